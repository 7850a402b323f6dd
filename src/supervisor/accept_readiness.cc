#include "supervisor/accept_readiness.h"

#include <fmt/format.h>

#include "supervisor/readiness.h"

namespace baton {

void AcceptReadiness::start() {
  const OwnedListener* tcp = nullptr;
  for (const auto& l : listeners_.listeners()) {
    if (l.steered() && l.address.transport == Transport::kTcp) {
      tcp = &l;
      break;
    }
  }
  if (tcp == nullptr) return;  // nothing to probe on
  if (!probing_) started_ = EventLoop::Clock::now();
  probing_ = true;
  auto probe = AcceptProbe::open(tcp->address);
  Status steered = probe ? listeners_.add_probe(probe->source(), generation_) : probe.error();
  if (steered) steered = probe->connect();
  if (!steered) {
    hooks_.log(fmt::format("generation {}: accept probe: {}", generation_, steered.error().what()));
    if (probe) {
      [[maybe_unused]] auto s = listeners_.remove_probe(probe->source());  // best effort
    }
    return retry_later();
  }
  probe_ = std::move(probe).value();
  look_in(kAcceptProbeRetryMin);
}

void AcceptReadiness::look_in(std::chrono::nanoseconds delay) {
  timer_ = loop_.add_timer(EventLoop::Clock::now() + delay, [this] {
    timer_ = 0;
    check();
  });
}

void AcceptReadiness::retry_later() {
  timer_ = loop_.add_timer(EventLoop::Clock::now() + kProbeRetry, [this] {
    timer_ = 0;
    if (hooks_.still_starting()) start();
  });
}

void AcceptReadiness::check() {
  if (!probe_) return;
  if (!hooks_.still_starting()) return stop();
  const auto began = thread_cpu_time();
  auto accepted = probe_->accepted();
  if (!accepted) {  // refused or reset: a new connection, a little later
    stop();
    return retry_later();
  }
  if (!*accepted) {
    return look_in(probe_retry_delay(EventLoop::Clock::now() - started_, thread_cpu_time() - began,
                                     kAcceptProbeRetryMin));
  }
  accepted_ = true;
  stop();
  hooks_.accepted();  // last: it may destroy this object
}

void AcceptReadiness::stop() {
  if (timer_ != 0) loop_.cancel_timer(timer_);
  timer_ = 0;
  if (probe_) {
    [[maybe_unused]] auto s = listeners_.remove_probe(probe_->source());  // best effort
    probe_.reset();
  }
}

}  // namespace baton
