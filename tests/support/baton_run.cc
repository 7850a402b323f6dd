#include "baton_run.h"

#include <signal.h>

#include <algorithm>

namespace baton::test {

Baton::Baton(const TempDir& dir, const std::vector<std::string>& run_args,
             const std::vector<std::string>& app, const SpawnOptions& options,
             const std::string& control_name, const std::string& binary)
    : control_(dir.file(control_name)) {
  std::vector<std::string> argv = {binary.empty() ? baton_binary() : binary, "run", "--control",
                                   control_};
  argv.insert(argv.end(), run_args.begin(), run_args.end());
  if (!app.empty()) {
    argv.push_back("--");
    argv.insert(argv.end(), app.begin(), app.end());
  }
  process_.emplace(Process::spawn(argv, options));
}

CommandResult Baton::ctl(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {baton_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--control");
  argv.push_back(control_);
  return run(argv, timeout);
}

nlohmann::json Baton::status(std::chrono::milliseconds timeout) {
  auto r = ctl({"status", "--json"}, timeout);
  if (r.exit_code != 0) return nlohmann::json();
  return nlohmann::json::parse(r.output, nullptr, false);
}

nlohmann::json Baton::wait_serving(int generation, std::chrono::milliseconds timeout) {
  nlohmann::json last;
  auto serves = [&](const nlohmann::json& s) {
    if (!s.is_object()) return false;
    const int serving = s.value("serving_generation", 0);
    return serving != 0 && (generation == 0 || serving == generation);
  };
  wait_until(
      [&] {
        last = status();
        return serves(last);
      },
      timeout, 50ms);
  return serves(last) ? last : nlohmann::json();
}

std::string Baton::wait_address(std::chrono::milliseconds timeout) {
  auto s = wait_serving(0, timeout);
  if (!s.is_object() || !s["listeners"].is_array() || s["listeners"].empty()) return "";
  return s["listeners"][0].value("address", "");
}

int Baton::wait_serving_pid(int generation, std::chrono::milliseconds timeout) {
  auto s = wait_serving(generation, timeout);
  return s.is_object() ? std::max(serving_pid(s), 0) : 0;
}

bool Baton::steered() {
  auto s = status();
  return s.is_object() && s["listeners"].is_array() && !s["listeners"].empty() &&
         s["listeners"][0].value("steering", "") == "steered";
}

bool Baton::stop(std::chrono::milliseconds each) {
  for (int i = 0; i < 2 && process_->running(); ++i) {
    process_->signal(SIGTERM);
    process_->wait(each);
  }
  return !process_->running();
}

int serving_pid(const nlohmann::json& status) {
  if (!status.is_object()) return -1;
  auto generations = status.find("generations");
  if (generations == status.end() || !generations->is_array()) return -1;
  const int serving = status.value("serving_generation", 0);
  for (const auto& g : *generations) {
    if (g.value("generation", 0) == serving) return g.value("pid", -1);
  }
  return -1;
}

}  // namespace baton::test
