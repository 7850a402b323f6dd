#include "supervisor/control_protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "baton/fd.h"
#include "common/syscall.h"
#include "common/unix_socket.h"

namespace baton {

Result<ControlRequest> parse_control_request(std::string_view line) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error("request is not a JSON object");
  auto version = j.find("baton");
  if (version == j.end() || !version->is_number_integer()) {
    return Error("request has no protocol version (\"baton\": 1)");
  }
  if (version->get<int64_t>() != kControlProtocolVersion) {
    return Error(fmt::format("unsupported protocol version {}; this supervisor speaks {}",
                             version->dump(), kControlProtocolVersion));
  }
  auto command = j.find("command");
  if (command == j.end() || !command->is_string()) return Error("request has no command");
  ControlRequest r;
  const auto& c = command->get_ref<const std::string&>();
  if (c == "reload") {
    r.command = ControlRequest::Command::kReload;
  } else if (c == "status") {
    r.command = ControlRequest::Command::kStatus;
  } else if (c == "stop") {
    r.command = ControlRequest::Command::kStop;
  } else if (c == "upgrade") {
    r.command = ControlRequest::Command::kUpgrade;
  } else {
    // At most 64 bytes of it, cut before a UTF-8 continuation byte so the reply stays valid JSON.
    size_t cut = std::min<size_t>(c.size(), 64);
    while (cut > 0 && cut < c.size() && (static_cast<unsigned char>(c[cut]) & 0xC0) == 0x80) --cut;
    return Error(fmt::format("unknown command '{}'", c.substr(0, cut)));
  }
  if (auto wait = j.find("wait"); wait != j.end()) {
    if (!wait->is_boolean()) return Error("\"wait\" must be true or false");
    r.wait = wait->get<bool>();
  }
  if (auto canary = j.find("canary"); canary != j.end()) {
    if (r.command != ControlRequest::Command::kReload) return Error("\"canary\" is for a reload");
    auto percent = canary->is_object() ? canary->find("percent") : canary->end();
    auto window = canary->is_object() ? canary->find("window_ms") : canary->end();
    if (!canary->is_object() || percent == canary->end() || window == canary->end() ||
        !percent->is_number_integer() || !window->is_number_integer()) {
      return Error("\"canary\" must be {\"percent\": 1-99, \"window_ms\": milliseconds}");
    }
    const auto p = percent->get<int64_t>();
    const auto w = window->get<int64_t>();
    if (p < 1 || p > 99) return Error("canary percent must be 1-99");
    if (w < 1 || w > kMaxCanaryWindow.count()) return Error("canary window must be 1 ms to 24 h");
    r.canary_percent = static_cast<int>(p);
    r.canary_window = std::chrono::milliseconds(w);
  }
  return r;
}

std::string format_control_request(const ControlRequest& request) {
  static constexpr const char* kNames[] = {"reload", "status", "stop", "upgrade"};
  nlohmann::json j = {{"baton", kControlProtocolVersion},
                      {"command", kNames[static_cast<int>(request.command)]}};
  if (request.command == ControlRequest::Command::kReload ||
      request.command == ControlRequest::Command::kUpgrade) {
    j["wait"] = request.wait;
  }
  if (request.canary_percent) {
    j["canary"] = {{"percent", *request.canary_percent},
                   {"window_ms", request.canary_window.count()}};
  }
  return j.dump() + "\n";
}

nlohmann::json control_error(const std::string& message) {
  return {{"baton", kControlProtocolVersion}, {"ok", false}, {"error", message}};
}

nlohmann::json control_ok(const std::string& message) {
  return {{"baton", kControlProtocolVersion}, {"ok", true}, {"message", message}};
}

namespace {

Result<nlohmann::json> call_once(const std::string& path, const ControlRequest& request,
                                 std::chrono::steady_clock::time_point deadline,
                                 std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  auto length = fill_unix_address(path, addr);
  if (!length) return Error("control socket path " + path + ": " + length.error().what());
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return Error::from_errno("socket");
  if (retry_eintr(::connect, fd.get(), reinterpret_cast<sockaddr*>(&addr), *length) != 0) {
    int e = errno;
    if (e == ENOENT || e == ECONNREFUSED) {
      return Error(
          fmt::format("no supervisor is running at {} (start one with 'baton run', or "
                      "pass --control)",
                      path));
    }
    return Error(e, "connect to the supervisor at " + path);
  }
  // Whoever could bind this path would otherwise answer for the supervisor (a planted control
  // directory): only a socket of our own uid, or root's, is believed.
  auto peer = peer_credentials(fd.get());
  if (!peer) {
    return Error(peer.error().code(), peer.error().context() + " on the control socket " + path);
  }
  if (!peer_uid_allowed(peer->uid)) {
    return Error(
        fmt::format("the control socket {} is served by uid {} (pid {}), neither you nor "
                    "root: not talking to it",
                    path, peer->uid, peer->pid));
  }
  std::string out = format_control_request(request);
  // A supervisor with every slot taken answers and closes without reading: the send then
  // fails, but its answer is there to read.
  Error send_error;
  if (retry_eintr(::send, fd.get(), out.data(), out.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(out.size())) {
    send_error = Error::from_errno("send to the supervisor");
    if (send_error.code() != EPIPE && send_error.code() != ECONNRESET) return send_error;
  }
  std::string in;
  for (;;) {
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return Error(ETIMEDOUT,
                   fmt::format("no answer from the supervisor within {}s", timeout.count() / 1000));
    }
    pollfd p{fd.get(), POLLIN, 0};
    int rc = retry_eintr(::poll, &p, 1, static_cast<int>(left.count()));
    if (rc < 0) return Error::from_errno("poll");
    if (rc == 0) continue;
    char buf[4096];
    ssize_t n = retry_eintr(::recv, fd.get(), buf, sizeof(buf), 0);
    if (n < 0 && send_error.code() != 0) return send_error;
    if (n < 0) return Error::from_errno("read from the supervisor");
    if (n == 0) break;
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > kMaxControlLine) return Error("reply from the supervisor too long");
    if (in.find('\n') != std::string::npos) break;
  }
  if (in.empty() && send_error.code() != 0) return send_error;
  if (in.empty()) return Error("the supervisor closed the connection without a reply");
  auto j = nlohmann::json::parse(in.substr(0, in.find('\n')), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("ok")) {
    return Error("malformed reply from the supervisor");
  }
  return j;
}

}  // namespace

Result<nlohmann::json> control_call(const std::string& path, const ControlRequest& request,
                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  constexpr auto kRetry = std::chrono::milliseconds(100);
  for (;;) {
    auto reply = call_once(path, request, deadline, timeout);
    if (!reply || reply->value("ok", false)) return reply;
    auto error = reply->find("error");
    if (error == reply->end() || !error->is_string() ||
        error->get<std::string>() != kTooManyControlClients) {
      return reply;
    }
    // Every slot is taken (silent clients are dropped within kControlRequestTimeout): retry.
    if (std::chrono::steady_clock::now() + kRetry >= deadline) {
      return Error(ETIMEDOUT, fmt::format("the supervisor at {} had too many control clients "
                                          "for {}s; try again",
                                          path, timeout.count() / 1000));
    }
    std::this_thread::sleep_for(kRetry);
  }
}

std::string escape_control_chars(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {  // U+0080..U+009F, e.g. CSI
      out += fmt::format("\\u{:04x}", next);
      ++i;
    } else if (c == '\\') {
      out += "\\\\";
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string default_control_path(const char* baton_control, const char* runtime_directory,
                                 const char* xdg_runtime_dir, uid_t euid) {
  auto set = [](const char* v) { return v != nullptr && *v != '\0'; };
  if (set(baton_control)) return baton_control;
  if (set(runtime_directory)) {
    // systemd lists one directory per RuntimeDirectory= entry, separated by ':': the first.
    std::string_view first(runtime_directory);
    first = first.substr(0, first.find(':'));
    if (!first.empty()) return std::string(first) + "/control.sock";
  }
  if (euid == 0) return "/run/baton/control.sock";
  if (set(xdg_runtime_dir)) return std::string(xdg_runtime_dir) + "/baton/control.sock";
  return fmt::format("/tmp/baton-{}/control.sock", euid);
}

std::string default_control_path() {
  return default_control_path(std::getenv("BATON_CONTROL"), std::getenv("RUNTIME_DIRECTORY"),
                              std::getenv("XDG_RUNTIME_DIR"), ::geteuid());
}

}  // namespace baton
