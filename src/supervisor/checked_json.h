// checked_json.h: reading a JSON document that comes from outside the process image (the upgrade
// state, upgrade_state.h): every field is looked up, type-checked and range-checked before it is
// read, and every array is bounded. What does not fit throws checked::Bad, which the decoder turns
// into an Error at its boundary: it never crosses it. Pure; nlohmann-json does the parsing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace baton::checked {

using json = nlohmann::json;

// A field that is missing, of another type, or out of range; `what` names it.
struct Bad {
  std::string what;
};

// `j`'s field `key`; throws when `j` is not an object or has no such field.
const json& field(const json& j, const char* key);
// An integer in [lo, hi].
std::int64_t integer(const json& j, const char* key, std::int64_t lo, std::int64_t hi);
int small(const json& j, const char* key, int lo = 0, int hi = INT32_MAX);
// A non-negative integer.
std::uint64_t count(const json& j, const char* key);
// A non-negative number.
double number(const json& j, const char* key);
bool flag(const json& j, const char* key);
std::string text(const json& j, const char* key);
// A string without NUL bytes (a path, an argument, a name: what a C string will carry).
std::string c_text(const json& j, const char* key);
// An array of at most `max` elements.
const json& array(const json& j, const char* key, size_t max);

}  // namespace baton::checked
