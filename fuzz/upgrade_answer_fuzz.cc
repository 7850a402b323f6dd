// Fuzzes the reading of the pre-flight check's answer (parse_upgrade_check_answer,
// src/supervisor/upgrade_state.h): the first line printed by whatever program sits at baton's
// path when `baton upgrade` runs it. An accepted answer has a version, and answering it back in
// the documented form is accepted with the same version.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "supervisor/upgrade_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto version = baton::parse_upgrade_check_answer(text);
  if (!version) return 0;
  const nlohmann::json again = {
      {"baton_upgrade_check", baton::kUpgradeStateVersion}, {"ok", true}, {"version", *version}};
  auto back = baton::parse_upgrade_check_answer(
      again.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  if (!back) std::abort();
  return 0;
}
