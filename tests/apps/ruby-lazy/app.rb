require 'socket'
server = TCPServer.new('0.0.0.0', 8080)
loop do
  client = server.accept
  request = client.gets || ''
  path = request.split(' ')[1] || '/'
  while (line = client.gets) && line != "\r\n"; end
  body = case path
         when '/' then "hello from ruby\n"
         when '/json' then (require 'json'; JSON.generate({ ok: true, path: path }) + "\n")
         when '/time' then (require 'time'; Time.now.utc.iso8601 + "\n")
         else "not found\n"
         end
  client.print "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}"
  client.close
end
