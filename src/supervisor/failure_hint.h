// failure_hint.h: the likely reason a generation never became ready, said with the failed reload.
//
// What the supervisor knows of the generation is gathered in HintFacts; the reason is chosen here,
// pure and unit-tested. Empty when there is nothing better to say than the failure itself.
#pragma once

#include <string>
#include <string_view>

namespace baton {

struct HintFacts {
  bool auto_readiness = false;  // --ready auto (the default)
  bool adopting = false;        // --adopt: libbaton_adopt.so is preloaded
  bool spoke_notify = false;    // some generation sent READY=1 or STATUS=
  bool probing = false;         // baton probes the generation's own TCP socket (auto, accept)
  bool said_ready = false;      // this generation sent READY=1
  bool accepted = false;        // ...and accepted baton's probe connection
  bool adopt_loaded = false;    // the adoption library said it loaded
  bool adopted = false;         // ...and that the app bound an address baton holds
  std::string held;             // the addresses baton holds, for the message
};

// Why the generation was not ready in time.
std::string failure_hint(const HintFacts& facts);
// Why it exited before it was ready, from the same facts and the end of its output: an app that
// binds the port itself fails with "Address already in use" where baton holds it.
std::string exit_hint(const HintFacts& facts, std::string_view output_tail);

}  // namespace baton
