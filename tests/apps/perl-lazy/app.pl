use strict;
use warnings;
use IO::Socket::INET;

$| = 1;
my $server = IO::Socket::INET->new(LocalPort => 8080, Listen => 16, ReuseAddr => 1)
    or die "listen: $!";
print "perl-lazy listening on 8080\n";

# Each handler loads its module when first called, never at start.
sub time_body {
    require POSIX;
    return POSIX::strftime('%Y-%m-%d', gmtime(86400 * 365)) . "\n";
}

sub json_body {
    my ($path) = @_;
    require JSON::PP;
    return JSON::PP->new->canonical->encode({ ok => JSON::PP::true(), path => $path }) . "\n";
}

sub piece_body {
    require Time::Piece;
    return Time::Piece->strptime('2024-01-02', '%Y-%m-%d')->strftime('%A %d %B %Y') . "\n";
}

while (my $client = $server->accept) {
    my $request = <$client>;
    next unless defined $request;
    my (undef, $path) = split ' ', $request;
    $path //= '/';
    while (defined(my $line = <$client>)) {
        last if $line =~ /^\r?\n$/;
    }
    my $body = $path eq '/' ? "hello from perl\n"
        : $path eq '/time' ? time_body()
        : $path eq '/json' ? json_body($path)
        : $path eq '/piece' ? piece_body()
        : "not found\n";
    print $client "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
        . length($body) . "\r\nConnection: close\r\n\r\n" . $body;
    close $client;
}
