// request_sniff.h: what a taken-over keep-alive connection's client is sending, told from the
// bytes waiting on it (never assumed): a plaintext HTTP/1.x request, which baton may relay to the
// serving generation, or anything else (a TLS record, HTTP/2's preface, another protocol, noise),
// which it must not.
//
// Pure: no I/O. The bytes are untrusted: only the first kSniffLimit are looked at.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace baton {

// The most bytes a request line may take before it is judged (methods, a target and "HTTP/1.x").
inline constexpr size_t kSniffLimit = 8192;

enum class Sniffed {
  kHttp1,     // a request line "METHOD SP target SP HTTP/1.d" ended by CRLF or LF
  kNeedMore,  // a prefix of such a line: wait for more bytes (bounded by the caller's deadline)
  kOther,     // not HTTP/1.x: never relayed
};

Sniffed sniff_request(std::string_view bytes);

// Whether `bytes` begin with a TLS record header: content type 21-23 (alert, handshake,
// application data), then major version 3.
bool is_tls_record(std::string_view bytes);

const char* to_string(Sniffed s);

// `bytes` (a request recognised by sniff_request, and what follows it) with the request asking
// the server to close the connection after its response: every Connection header line of the
// head is dropped and "Connection: close" follows the request line. The server then answers
// with "Connection: close" and ends the connection, which the client sees as the end of a
// complete response and opens a new one, straight to the serving generation: so a relayed
// client is relayed for one request, not for the rest of its connection's life.
// Empty (send the bytes unchanged) when the head is not all in `bytes` (up to its blank line,
// within kSniffLimit), or when the request asks to switch protocols (an Upgrade header: a
// WebSocket handshake must reach the server as sent).
std::string with_connection_close(std::string_view bytes);

// The server's side of that: its response may lack "Connection: close" (the JDK's HttpServer
// closes without saying so), and a client that does not read it would send its next request on
// the ending connection. So the response head says it too, rewritten the same way. 1xx interim
// responses pass as they are; the first final response is rewritten; what follows passes.
struct ResponseRewrite {
  bool done = false;  // false: the head is not all here yet; read more and call again
  std::string out;    // done: what to send in place of all of `bytes`
};
// `bytes`: everything the server sent so far. Gives up (done, `bytes` unchanged) on what is not
// an HTTP/1.x status line or on a head longer than kSniffLimit.
ResponseRewrite response_with_connection_close(std::string_view bytes);

}  // namespace baton
