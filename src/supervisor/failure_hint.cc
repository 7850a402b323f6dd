#include "supervisor/failure_hint.h"

#include <algorithm>
#include <cctype>

namespace baton {
namespace {

// A master process that said READY=1 before anything of it could take a connection.
bool ready_without_accept(const HintFacts& f) {
  return f.auto_readiness && f.spoke_notify && f.said_ready && f.probing && !f.accepted;
}
constexpr std::string_view kReadyWithoutAccept =
    "it sent READY=1 but accepted no connection on its socket: a master process that says "
    "ready before its workers can serve";

bool contains_nocase(std::string_view text, std::string_view word) {
  return std::search(text.begin(), text.end(), word.begin(), word.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) ==
                  std::tolower(static_cast<unsigned char>(b));
         }) != text.end();
}

}  // namespace

std::string failure_hint(const HintFacts& f) {
  if (f.auto_readiness && !f.adopting) {
    if (f.spoke_notify && !f.said_ready) {
      return "the app speaks sd_notify, so it is held to READY=1, which it did not send";
    }
    if (ready_without_accept(f)) {
      return std::string(kReadyWithoutAccept) +
             " (a worker failing at start-up?); --ready notify would trust READY=1 alone";
    }
    if (f.spoke_notify) return {};
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

std::string exit_hint(const HintFacts& f, std::string_view output_tail) {
  if (!f.adopting && (contains_nocase(output_tail, "address already in use") ||
                      contains_nocase(output_tail, "EADDRINUSE"))) {
    return "the app binds " + (f.held.empty() ? std::string("the address") : f.held) +
           " itself, which baton holds (\"Address already in use\"): run it under --adopt, "
           "which hands it baton's socket at its bind, or pass it the socket (LISTEN_FDS)";
  }
  if (ready_without_accept(f)) return std::string(kReadyWithoutAccept);
  return {};
}

}  // namespace baton
