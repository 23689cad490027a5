use strict;
use warnings;
use IO::Socket::INET;

$| = 1;
my $server = IO::Socket::INET->new(LocalPort => 8080, Listen => 16, ReuseAddr => 1)
    or die "listen: $!";
print "echo listening on 8080\n";
while (my $client = $server->accept) {
    my $request = <$client>;
    next unless defined $request;
    $request =~ s/\r?\n$//;
    my ($length, $marker) = (0, '');
    while (defined(my $line = <$client>)) {
        last if $line =~ /^\r?\n$/;
        $length = $1 if $line =~ /^Content-Length:\s*(\d+)/i;
        $marker = $1 if $line =~ /^X-Slim-Test:\s*(.*?)\r?$/i;
    }
    my $body = '';
    read($client, $body, $length) if $length;
    my $answer = "$request\nx-slim-test: $marker\n\n$body";
    print $client "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
        . length($answer) . "\r\nConnection: close\r\n\r\n" . $answer;
    close $client;
}
