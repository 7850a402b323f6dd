// Fuzzes the generation label put on an app's output (--prefix-output): the app writes anything,
// in pieces of any size. The first byte picks the journal mode and where the pieces are cut.
// Whatever comes in, every line that goes out starts with the label (after a "<N>" priority in
// journal mode), and taking the labels away gives back exactly what the app wrote.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "supervisor/log.h"

namespace {

// `out` with the label taken off each line start (after a priority, in journal mode).
std::string unlabel(std::string_view out, const std::string& label, bool journal) {
  std::string back;
  bool line_start = true;
  size_t i = 0;
  while (i < out.size()) {
    if (line_start) {
      size_t at = i;
      if (journal && out[i] == '<') {
        const size_t close = out.find('>', i);
        if (close != std::string_view::npos && close - i >= 2 && close - i <= 4) at = close + 1;
        if (out.substr(at, label.size()) != label) at = i;  // "<" was the app's, label after?
      }
      if (out.substr(at, label.size()) != label) std::abort();  // a line without its label
      back.append(out.substr(i, at - i));
      i = at + label.size();
      line_start = false;
      continue;
    }
    const size_t nl = out.find('\n', i);
    const size_t end = nl == std::string_view::npos ? out.size() : nl + 1;
    back.append(out.substr(i, end - i));
    i = end;
    line_start = nl != std::string_view::npos;
  }
  return back;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool journal = (data[0] & 1) != 0;
  const size_t step = 1 + (data[0] >> 1);  // piece size, 1 to 128
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string label = baton::generation_label(7);
  baton::LinePrefixer prefixer(label, journal);
  std::string out;
  for (size_t at = 0; at < input.size(); at += step) out += prefixer.add(input.substr(at, step));
  out += prefixer.finish();
  if (unlabel(out, label, journal) != input) std::abort();
  return 0;
}
