// The network namespace a fence guards: the one `attach` ran in (its cookie is
// in the config map). The guarded interfaces, their qdiscs and the sockets the
// --max-conns counter sees live there, so a verb run from another namespace
// (a shell in the host's root namespace, the fence in a container's) enters it
// for interface names, ifindexes and tc. The maps themselves are reachable from
// any namespace.
#pragma once

#include <cstdint>
#include <string>

namespace smtpfence {

// This thread's network namespace cookie (SO_NETNS_COOKIE of a new socket).
uint64_t current_netns_cookie();

// Moves this thread into the namespace the fence of `pin_dir` guards, found
// among the named namespaces (/var/run/netns) and those of running processes.
// True when the thread is there (already, or now, or the maps predate the
// recorded cookie); false when no namespace has that cookie (it is gone with
// its interfaces, or hidden from this mount namespace), and the thread stays.
bool enter_guarded_netns(const std::string& pin_dir);

// The RuntimeError of a verb that needs the guarded namespace's interfaces
// and could not enter it: what failed, and how to run it instead.
[[noreturn]] void throw_outside_guarded_netns(const std::string& what);

}  // namespace smtpfence
