#include "supervisor/request_sniff.h"

namespace baton {
namespace {

// RFC 9110's tchar, the characters of a method token.
bool is_tchar(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// A request target: visible ASCII, no space (RFC 9112 3.2).
bool is_target_char(char c) { return c > ' ' && c < 0x7f; }

constexpr size_t kMaxMethod = 32;
constexpr std::string_view kVersion = "HTTP/1.";

}  // namespace

Sniffed sniff_request(std::string_view bytes) {
  if (bytes.size() > kSniffLimit) bytes = bytes.substr(0, kSniffLimit);
  size_t at = 0;
  // The method: 1 to kMaxMethod tchars, then one space.
  while (at < bytes.size() && is_tchar(bytes[at])) {
    if (++at > kMaxMethod) return Sniffed::kOther;
  }
  if (at == bytes.size()) return bytes.size() < kSniffLimit ? Sniffed::kNeedMore : Sniffed::kOther;
  if (at == 0 || bytes[at] != ' ') return Sniffed::kOther;
  ++at;
  // The target.
  const size_t target = at;
  while (at < bytes.size() && is_target_char(bytes[at])) ++at;
  if (at == bytes.size()) return bytes.size() < kSniffLimit ? Sniffed::kNeedMore : Sniffed::kOther;
  if (at == target || bytes[at] != ' ') return Sniffed::kOther;
  ++at;
  // "HTTP/1." and one digit, then CRLF or LF.
  for (char expected : kVersion) {
    if (at == bytes.size()) return Sniffed::kNeedMore;
    if (bytes[at++] != expected) return Sniffed::kOther;
  }
  if (at == bytes.size()) return Sniffed::kNeedMore;
  if (bytes[at] < '0' || bytes[at] > '9') return Sniffed::kOther;
  ++at;
  if (at == bytes.size()) return Sniffed::kNeedMore;
  if (bytes[at] == '\n') return Sniffed::kHttp1;
  if (bytes[at++] != '\r') return Sniffed::kOther;
  if (at == bytes.size()) return Sniffed::kNeedMore;
  return bytes[at] == '\n' ? Sniffed::kHttp1 : Sniffed::kOther;
}

const char* to_string(Sniffed s) {
  switch (s) {
    case Sniffed::kHttp1:
      return "HTTP/1.x";
    case Sniffed::kNeedMore:
      return "incomplete";
    case Sniffed::kOther:
      return "not HTTP/1.x";
  }
  return "?";
}

bool is_tls_record(std::string_view bytes) {
  if (bytes.size() < 2 || bytes[1] != 0x03) return false;
  return bytes[0] == 0x15 || bytes[0] == 0x16 || bytes[0] == 0x17;
}

}  // namespace baton
