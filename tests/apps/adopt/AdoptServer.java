// A plain Java app on the JDK's built-in HTTP server (com.sun.net.httpserver) that binds its own
// fixed port and knows nothing of baton.
//
// Usage: java -cp DIR AdoptServer PORT [HOST]   (HOST defaults to 127.0.0.1; "::" or "0.0.0.0")
//
// It answers every request with "java pid=<pid>" and, on SIGTERM (the JVM runs its shutdown
// hooks), stops the server with a grace period for the exchanges in flight.
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Executors;

public class AdoptServer {
  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[0]);
    String host = args.length > 1 ? args[1] : "127.0.0.1";
    HttpServer server = HttpServer.create(new InetSocketAddress(host, port), 0);
    byte[] body = ("java pid=" + ProcessHandle.current().pid() + "\n")
        .getBytes(StandardCharsets.UTF_8);
    server.createContext("/", exchange -> {
      exchange.getResponseHeaders().set("Content-Type", "text/plain");
      exchange.sendResponseHeaders(200, body.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(body);
      }
    });
    server.setExecutor(Executors.newFixedThreadPool(4));
    server.start();
    System.out.println("listening on " + server.getAddress().getAddress().getHostAddress() + ":"
        + server.getAddress().getPort());
    Runtime.getRuntime().addShutdownHook(new Thread(() -> server.stop(1)));
  }
}
