// request_sniff.h: what a taken-over keep-alive connection's client is sending, told from the
// bytes waiting on it (never assumed): a plaintext HTTP/1.x request, which baton may relay to the
// serving generation, or anything else (a TLS record, HTTP/2's preface, another protocol, noise),
// which it must not.
//
// Pure: no I/O. The bytes are untrusted: only the first kSniffLimit are looked at.
#pragma once

#include <cstddef>
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

}  // namespace baton
