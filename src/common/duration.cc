#include "common/duration.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

namespace baton {

Result<std::chrono::nanoseconds> parse_duration(std::string_view text, bool allow_zero) {
  auto bad = [&] {
    return Error(
        fmt::format("bad duration '{}': expected e.g. 30s, 500ms, 2m, 1h or plain seconds", text));
  };
  size_t unit_at = 0;
  while (unit_at < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    ++unit_at;
  }
  std::string number(text.substr(0, unit_at));
  std::string_view unit = text.substr(unit_at);
  if (number.empty() || number.size() > 32 || number.front() == '.' || number.back() == '.' ||
      std::count(number.begin(), number.end(), '.') > 1) {
    return bad();
  }
  double value = std::strtod(number.c_str(), nullptr);
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1e9;
  else if (unit == "ms")
    scale = 1e6;
  else if (unit == "us")
    scale = 1e3;
  else if (unit == "m" || unit == "min")
    scale = 60e9;
  else if (unit == "h")
    scale = 3600e9;
  else
    return bad();
  double ns = value * scale;
  if (!std::isfinite(ns) || ns > 1e18) return bad();
  if (ns <= 0 && !allow_zero) {
    return Error(fmt::format("bad duration '{}': must be greater than zero", text));
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(ns)));
}

Result<std::chrono::milliseconds> parse_duration_ms(std::string_view text, bool allow_zero) {
  auto ns = parse_duration(text, allow_zero);
  if (!ns) return ns.error();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*ns);
  if (ms.count() == 0 && ns->count() > 0) ms = std::chrono::milliseconds(1);
  return ms;
}

std::string format_duration(std::chrono::milliseconds d) {
  const int64_t ms = std::max<int64_t>(0, d.count());
  const int64_t s = ms / 1000;
  if (s < 10) {
    const int64_t tenths = ms / 100;  // cut, not rounded: 1.99 s is not yet "2.0s"
    return fmt::format("{}.{}s", tenths / 10, tenths % 10);
  }
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m {:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h {:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d {:02}h", s / 86400, s % 86400 / 3600);
}

std::string duration_to_string(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

}  // namespace baton
