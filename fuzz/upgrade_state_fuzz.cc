// Fuzzes the upgrade state decoder (upgrade_state.h): bytes a resumed supervisor reads from the
// memfd its predecessor wrote. Whatever it accepts must encode back to bytes that decode again
// to the same encoding, and every descriptor it names must be checked (>= 3, named once).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

#include "supervisor/upgrade_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto state = baton::decode_upgrade_state(bytes);
  if (!state) return 0;
  std::set<int> fds;
  for (const auto& p : baton::passed_fds(*state)) {
    if (p.fd < 3 || !fds.insert(p.fd).second) std::abort();
  }
  const std::string once = baton::encode_upgrade_state(*state);
  auto again = baton::decode_upgrade_state(once);
  if (!again || baton::encode_upgrade_state(*again) != once) std::abort();
  return 0;
}
