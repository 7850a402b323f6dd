#include "supervisor/checked_json.h"

#include <fmt/format.h>

namespace baton::checked {

const json& field(const json& j, const char* key) {
  if (!j.is_object()) throw Bad{fmt::format("expected an object holding \"{}\"", key)};
  auto it = j.find(key);
  if (it == j.end()) throw Bad{fmt::format("\"{}\" is missing", key)};
  return *it;
}

std::int64_t integer(const json& j, const char* key, std::int64_t lo, std::int64_t hi) {
  const json& v = field(j, key);
  if (!v.is_number_integer()) throw Bad{fmt::format("\"{}\" is not an integer", key)};
  // An unsigned above INT64_MAX reads as negative here and fails the range.
  const std::int64_t n =
      v.is_number_unsigned() && v.get<std::uint64_t>() > INT64_MAX ? -1 : v.get<std::int64_t>();
  if (n < lo || n > hi) throw Bad{fmt::format("\"{}\" is out of range", key)};
  return n;
}

int small(const json& j, const char* key, int lo, int hi) {
  return static_cast<int>(integer(j, key, lo, hi));
}

std::uint64_t count(const json& j, const char* key) {
  const json& v = field(j, key);
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
    throw Bad{fmt::format("\"{}\" is not a count", key)};
  }
  return v.get<std::uint64_t>();
}

double number(const json& j, const char* key) {
  const json& v = field(j, key);
  if (!v.is_number() || v.get<double>() < 0) throw Bad{fmt::format("\"{}\" is not a number", key)};
  return v.get<double>();
}

bool flag(const json& j, const char* key) {
  const json& v = field(j, key);
  if (!v.is_boolean()) throw Bad{fmt::format("\"{}\" is not true or false", key)};
  return v.get<bool>();
}

std::string text(const json& j, const char* key) {
  const json& v = field(j, key);
  if (!v.is_string()) throw Bad{fmt::format("\"{}\" is not a string", key)};
  return v.get<std::string>();
}

std::string c_text(const json& j, const char* key) {
  std::string s = text(j, key);
  if (s.find('\0') != std::string::npos) throw Bad{fmt::format("\"{}\" holds a NUL byte", key)};
  return s;
}

const json& array(const json& j, const char* key, size_t max) {
  const json& v = field(j, key);
  if (!v.is_array() || v.size() > max) throw Bad{fmt::format("\"{}\" is not a short array", key)};
  return v;
}

}  // namespace baton::checked
