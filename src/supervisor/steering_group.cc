#include "supervisor/steering_group.h"

#include <sys/socket.h>

#include <fmt/format.h>

#include "supervisor/group_members.h"

namespace baton {

bool steerable(const Address& address) {
  return address.transport != Transport::kUnix &&
         (address.family() == AF_INET || address.family() == AF_INET6);
}

Result<SteeringGroup> SteeringGroup::open(const Address& address, const BindOptions& options) {
  if (!steerable(address)) return Error(EINVAL, "steer " + address.to_string());
  // A socket with SO_REUSEPORT would join the group of another supervisor of the same user on
  // this address instead of failing; a plain bind first keeps "address in use" an error. It is
  // closed before the member is bound: the two cannot be bound at once.
  BindOptions plain = options;
  plain.reuse_port = false;
  Address resolved = address;
  {
    auto probe = bind_listener(address, plain);
    if (!probe) return probe.error();
    auto bound = bound_address(probe->get(), address.transport);
    if (!bound) return bound.error();
    resolved = *bound;
  }
  BindOptions member = options;
  member.reuse_port = true;
  SteeringGroup group(resolved, member);
  if (auto s = group.grow(1); !s) return s.error();
  return group;
}

Result<SteeringGroup> SteeringGroup::adopt(Fd& inherited, const Address& bound,
                                           const BindOptions& options,
                                           const std::vector<sock_filter>& program) {
  if (!steerable(bound)) return Error(EINVAL, "steer " + bound.to_string());
  auto flag = [&](int option) {
    int value = 0;
    socklen_t len = sizeof(value);
    return ::getsockopt(inherited.get(), SOL_SOCKET, option, &value, &len) == 0 && value != 0;
  };
  if (!flag(SO_REUSEPORT)) {
    return Error(EINVAL, fmt::format("the socket for {} has no SO_REUSEPORT (ReusePort=yes)",
                                     bound.to_string()));
  }
  if (bound.transport != Transport::kUdp && !flag(SO_ACCEPTCONN)) {
    return Error(EINVAL, fmt::format("the socket for {} is not listening", bound.to_string()));
  }
  if (auto s = attach(inherited.get(), bound, program); !s) return s.error();
  BindOptions member = options;
  member.reuse_port = true;
  SteeringGroup group(bound, member);
  group.members_.push_back(std::move(inherited));
  if (auto s = group.add_member(); !s) {
    inherited = std::move(group.members_[0]);  // left to the caller, as promised
    return s.error();
  }
  return group;
}

int SteeringGroup::member(int slot) const {
  return slot >= 0 && slot < size() ? members_[static_cast<size_t>(slot)].get() : -1;
}

Status SteeringGroup::grow(int slots) {
  while (size() < slots) {
    if (auto s = add_member(); !s) return s;
  }
  return {};
}

Status SteeringGroup::add_member() {
  std::vector<std::uint64_t> ours;
  for (const auto& m : members_) ours.push_back(socket_inode(m.get()));
  // Before: a stranger already in the group would sit where the new member is counted.
  if (auto s = check_alone(ours); !s) return s;
  auto fd = bind_listener(address_, options_);
  if (!fd) return fd.error();
  ours.push_back(socket_inode(fd->get()));
  // After: one that joined meanwhile may be before the new member, or after it. Either way
  // closing the new member (nothing is steered to it yet) leaves baton's members where they were:
  // the kernel refills a closed index from the end, where only strangers are.
  if (auto s = check_alone(ours); !s) return s;
  members_.push_back(std::move(fd).value());
  return {};
}

Status SteeringGroup::check_alone(const std::vector<std::uint64_t>& ours) {
  auto seen = sockets_bound_to(address_);
  if (!seen) {
    if (seen.error().code() == ENOENT) return {};  // no sock_diag for this protocol here
    return Error(seen.error().code(),
                 fmt::format("{}: cannot list the sockets of its SO_REUSEPORT group ({})",
                             address_.to_string(), seen.error().context()));
  }
  const auto others = strangers(*seen, ours);
  if (others.empty()) return {};
  ++strangers_found_;
  return Error(fmt::format(
      "{}: a socket baton does not hold (inode {}{}) is in its SO_REUSEPORT group, bound by a "
      "process with baton's uid; no member is added while it is there, since new connections "
      "could reach it (`ss -ltnpe` shows its owner)",
      address_.to_string(), others.front(),
      others.size() > 1 ? fmt::format(" and {} more", others.size() - 1) : ""));
}

Status SteeringGroup::steer(const std::vector<sock_filter>& program) {
  if (members_.empty()) return Error(EINVAL, "steer: nothing to attach");
  return attach(members_[0].get(), address_, program);
}

Status SteeringGroup::attach(int fd, const Address& address,
                             const std::vector<sock_filter>& program) {
  if (program.empty()) return Error(EINVAL, "steer: nothing to attach");
  sock_fprog prog{static_cast<unsigned short>(program.size()),
                  const_cast<sock_filter*>(program.data())};
  if (::setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) != 0) {
    return Error::from_errno(fmt::format("SO_ATTACH_REUSEPORT_CBPF on {}", address.to_string()));
  }
  return {};
}

}  // namespace baton
