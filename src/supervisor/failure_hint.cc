#include "supervisor/failure_hint.h"

namespace baton {

std::string failure_hint(const HintFacts& f) {
  if (f.auto_readiness && !f.adopting) {
    if (f.spoke_notify) {
      return "the app speaks sd_notify, so it is held to READY=1, which it did not send";
    }
    if (!f.probing) {
      return "it sent no READY=1 and baton has no TCP listener to probe it on; choose a --ready "
             "check";
    }
    return "it neither sent READY=1 nor accepted baton's probe connection";
  }
  if (!f.adopting) return {};
  if (!f.adopt_loaded) {
    return "the adoption library did not load into the app (statically linked, setuid, or a "
           "wrapper dropped LD_PRELOAD)";
  }
  if (!f.adopted) return "the app never bound an address baton holds (baton holds " + f.held + ")";
  return {};
}

}  // namespace baton
