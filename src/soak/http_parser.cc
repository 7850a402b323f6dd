#include "soak/http_parser.h"

#include <algorithm>
#include <cstring>

namespace baton::soak {
namespace {

constexpr size_t kMaxLine = 8 * 1024;
constexpr uint64_t kMaxHead = 64 * 1024;

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// True when the comma-separated list `value` holds `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    if (iequals(trim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

void ResponseParser::reset() {
  phase_ = Phase::kStatus;
  partial_.clear();
  status_ = 0;
  minor_version_ = 1;
  keep_alive_ = true;
  chunked_ = has_length_ = connection_close_ = connection_keep_alive_ = false;
  has_transfer_encoding_ = false;
  remaining_ = head_bytes_ = bytes_ = body_bytes_ = 0;
  captured_.clear();
  error_.clear();
}

bool ResponseParser::fail(std::string message) {
  error_ = std::move(message);
  return false;
}

ResponseParser::State ResponseParser::feed(const char* data, size_t len, size_t* used) {
  size_t pos = 0;
  if (!error_.empty()) return State::kError;
  while (pos < len) {
    switch (phase_) {
      case Phase::kStatus:
      case Phase::kHeaders:
      case Phase::kChunkSize:
      case Phase::kChunkCrlf:
      case Phase::kTrailers: {
        const char* nl = static_cast<const char*>(std::memchr(data + pos, '\n', len - pos));
        size_t take = nl ? static_cast<size_t>(nl - (data + pos)) + 1 : len - pos;
        bytes_ += take;
        if (phase_ == Phase::kStatus || phase_ == Phase::kHeaders) {
          head_bytes_ += take;
          if (head_bytes_ > kMaxHead) {
            fail("response head larger than 64 KiB");
            *used = pos + take;
            return State::kError;
          }
        }
        if (!nl) {
          if (partial_.size() + take > kMaxLine) {
            fail("response line longer than 8 KiB");
            *used = len;
            return State::kError;
          }
          partial_.append(data + pos, take);
          pos = len;
          break;
        }
        std::string_view line;
        if (partial_.empty()) {
          line = std::string_view(data + pos, take - 1);
        } else {
          partial_.append(data + pos, take - 1);
          line = partial_;
        }
        pos += take;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.size() > kMaxLine) {
          fail("response line longer than 8 KiB");
        } else {
          on_line(line);
        }
        partial_.clear();
        if (!error_.empty()) {
          *used = pos;
          return State::kError;
        }
        if (phase_ == Phase::kDone) {
          *used = pos;
          return State::kComplete;
        }
        break;
      }
      case Phase::kBodyLength:
      case Phase::kChunkData: {
        uint64_t take = std::min<uint64_t>(remaining_, len - pos);
        pos += take;
        remaining_ -= take;
        bytes_ += take;
        body_bytes_ += take;
        if (remaining_ == 0) {
          if (phase_ == Phase::kBodyLength) {
            phase_ = Phase::kDone;
            *used = pos;
            return State::kComplete;
          }
          phase_ = Phase::kChunkCrlf;
        }
        break;
      }
      case Phase::kBodyEof:
        bytes_ += len - pos;
        body_bytes_ += len - pos;
        pos = len;
        break;
      case Phase::kDone:
        *used = pos;
        return State::kComplete;
    }
  }
  *used = pos;
  return phase_ == Phase::kDone ? State::kComplete : State::kNeedMore;
}

ResponseParser::State ResponseParser::finish_eof() {
  if (phase_ == Phase::kBodyEof) {
    phase_ = Phase::kDone;
    keep_alive_ = false;
    return State::kComplete;
  }
  if (phase_ == Phase::kDone) return State::kComplete;
  if (error_.empty()) {
    error_ = bytes_ == 0 ? "connection closed before the response"
                         : "connection closed in the middle of the response";
  }
  return State::kError;
}

bool ResponseParser::on_line(std::string_view line) {
  switch (phase_) {
    case Phase::kStatus:
      return on_status_line(line);
    case Phase::kHeaders:
      if (line.empty()) return on_headers_end();
      return on_header_line(line);
    case Phase::kChunkSize: {
      std::string_view size_text = line.substr(0, line.find(';'));
      size_text = trim(size_text);
      if (size_text.empty() || size_text.size() > 15) return fail("bad chunk size line");
      uint64_t size = 0;
      for (char c : size_text) {
        int d;
        if (c >= '0' && c <= '9')
          d = c - '0';
        else if (c >= 'a' && c <= 'f')
          d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
          d = c - 'A' + 10;
        else
          return fail("bad chunk size line");
        size = size * 16 + static_cast<uint64_t>(d);
      }
      if (size == 0) {
        phase_ = Phase::kTrailers;
      } else {
        remaining_ = size;
        phase_ = Phase::kChunkData;
      }
      return true;
    }
    case Phase::kChunkCrlf:
      if (!line.empty()) return fail("chunk data longer than its size");
      phase_ = Phase::kChunkSize;
      return true;
    case Phase::kTrailers:
      if (line.empty()) phase_ = Phase::kDone;
      return true;
    default:
      return fail("internal: line in body phase");
  }
}

bool ResponseParser::on_status_line(std::string_view line) {
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || line[8] != ' ' ||
      (line.size() > 12 && line[12] != ' ')) {
    if (line.empty() && status_ == 0 && bytes_ <= 2) return true;  // tolerate a stray CRLF
    return fail("malformed status line: '" + std::string(line.substr(0, 60)) + "'");
  }
  if (line[7] != '0' && line[7] != '1') return fail("unsupported HTTP version");
  minor_version_ = line[7] - '0';
  int status = 0;
  for (int i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return fail("malformed status code");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) return fail("malformed status code");
  status_ = status;
  phase_ = Phase::kHeaders;
  return true;
}

bool ResponseParser::on_header_line(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return fail("malformed header line");
  std::string_view name = line.substr(0, colon);
  if (name.back() == ' ' || name.back() == '\t') return fail("whitespace before header colon");
  std::string_view value = trim(line.substr(colon + 1));
  switch (std::tolower(static_cast<unsigned char>(name[0]))) {
    case 'c':
      if (iequals(name, "content-length")) {
        if (value.empty() || value.size() > 18) return fail("bad Content-Length");
        uint64_t n = 0;
        for (char c : value) {
          if (c < '0' || c > '9') return fail("bad Content-Length");
          n = n * 10 + static_cast<uint64_t>(c - '0');
        }
        if (has_length_ && n != remaining_) return fail("conflicting Content-Length headers");
        has_length_ = true;
        remaining_ = n;
      } else if (iequals(name, "connection")) {
        if (has_token(value, "close")) connection_close_ = true;
        if (has_token(value, "keep-alive")) connection_keep_alive_ = true;
      }
      break;
    case 't':
      if (iequals(name, "transfer-encoding")) {
        has_transfer_encoding_ = true;
        // chunked must be the last coding (RFC 9112 6.1); anything else: read until close.
        size_t comma = value.rfind(',');
        std::string_view last =
            trim(comma == std::string_view::npos ? value : value.substr(comma + 1));
        chunked_ = iequals(last, "chunked");
      }
      break;
    default:
      break;
  }
  if (!capture_name_.empty() && iequals(name, capture_name_)) captured_ = std::string(value);
  return true;
}

bool ResponseParser::on_headers_end() {
  if (status_ >= 100 && status_ < 200) {
    // Interim response (100 Continue, 103 Early Hints): the final one follows.
    if (status_ == 101) return fail("unexpected 101 Switching Protocols");
    phase_ = Phase::kStatus;
    status_ = 0;
    has_length_ = chunked_ = has_transfer_encoding_ = false;
    connection_close_ = connection_keep_alive_ = false;
    remaining_ = 0;
    return true;
  }
  keep_alive_ = minor_version_ >= 1 ? !connection_close_ : connection_keep_alive_;
  if (status_ == 204 || status_ == 304) {
    phase_ = Phase::kDone;
  } else if (has_transfer_encoding_) {
    if (chunked_) {
      phase_ = Phase::kChunkSize;
    } else {
      phase_ = Phase::kBodyEof;
      keep_alive_ = false;
    }
  } else if (has_length_) {
    phase_ = remaining_ == 0 ? Phase::kDone : Phase::kBodyLength;
  } else {
    phase_ = Phase::kBodyEof;
    keep_alive_ = false;
  }
  return true;
}

}  // namespace baton::soak
