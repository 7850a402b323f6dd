#include "supervisor/request_sniff.h"

#include <algorithm>
#include <optional>

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

namespace {

// Whether the header line `line` (no line end) is named `name` (lower case), case-insensitively.
bool header_named(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = line[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c) != name[i]) return false;
  }
  return true;
}

// "HTTP/1.d SP NNN": the status code, or -1.
int status_code(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 7) != kVersion || line[8] != ' ') return -1;
  int code = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return -1;
    code = code * 10 + (line[i] - '0');
  }
  return code;
}

// The head that starts at `at`, as [at, end) including its blank line; npos when not all here.
size_t head_end(std::string_view bytes, size_t at) {
  for (size_t nl = bytes.find('\n', at); nl != std::string_view::npos;
       nl = bytes.find('\n', nl + 1)) {
    const size_t next = nl + 1;
    if (next < bytes.size() && bytes[next] == '\n') return next + 1;
    if (next + 1 < bytes.size() && bytes[next] == '\r' && bytes[next + 1] == '\n') {
      return next + 2;
    }
  }
  return std::string_view::npos;
}

// `head` (its first line to its blank line, line ends kept) rewritten to say "Connection: close":
// that line right after the first, and the head's own Connection lines dropped. With `strict`
// (a request), nothing when a line continues the one before (obsolete folding) or asks to
// Upgrade: what the rewrite cannot vouch for is sent as it is.
std::optional<std::string> closing_head(std::string_view head, bool strict) {
  const size_t first_end = head.find('\n') + 1;
  const std::string_view first = head.substr(0, first_end);
  std::string out(first);
  out.append(first.size() >= 2 && first[first.size() - 2] == '\r' ? "Connection: close\r\n"
                                                                  : "Connection: close\n");
  for (size_t at = first_end; at < head.size();) {
    const size_t end = head.find('\n', at) + 1;
    const std::string_view line = head.substr(at, end - at);
    at = end;
    std::string_view text = line.substr(0, line.size() - 1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (strict && !text.empty() &&
        (text.front() == ' ' || text.front() == '\t' || header_named(text, "upgrade"))) {
      return std::nullopt;
    }
    if (!header_named(text, "connection")) out.append(line);
  }
  return out;
}

}  // namespace

std::string with_connection_close(std::string_view bytes) {
  if (sniff_request(bytes) != Sniffed::kHttp1) return {};
  const size_t end = head_end(bytes, 0);
  if (end == std::string_view::npos || end > kSniffLimit) return {};  // not all here
  auto head = closing_head(bytes.substr(0, end), /*strict=*/true);
  if (!head) return {};
  head->append(bytes.substr(end));
  return *std::move(head);
}

ResponseRewrite response_with_connection_close(std::string_view bytes) {
  ResponseRewrite r;
  size_t at = 0;
  for (;;) {
    const size_t end = head_end(bytes, at);
    if (end == std::string_view::npos) {
      if (bytes.size() - at <= kSniffLimit) return r;  // wait for the rest
      break;                                           // too long: passed as it is
    }
    const size_t line_end = bytes.find('\n', at);
    const int code = status_code(bytes.substr(at, line_end - at));
    if (code < 100 || code == 101) break;  // not a status line, or a switch: passed as it is
    const std::string_view head = bytes.substr(at, end - at);
    if (code < 200) {  // interim: as it is, then the next head
      r.out.append(head);
      at = end;
      continue;
    }
    r.out.append(*closing_head(head, /*strict=*/false));
    r.out.append(bytes.substr(end));
    r.done = true;
    return r;
  }
  r.out.append(bytes.substr(at));
  r.done = true;
  return r;
}

}  // namespace baton
