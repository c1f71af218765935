// Who and where a command runs: recorded with every rule it makes (who,
// from where) and checked against what it blocks (this host's own addresses).
#pragma once

#include <string>
#include <vector>

#include "text/rule_options.h"

namespace smtpfence {

// The user a rule is recorded for: SUDO_USER under sudo, else the real user.
std::string invoking_user();
// Where the command runs: this host's name, and the ssh client it was reached
// from ("mx1 (ssh from 203.0.113.7)"), at most FENCE_ORIGIN_LEN - 1 bytes.
std::string invoking_origin();

// Every address of this host's interfaces, in the current network namespace.
std::vector<HostAddress> host_addresses();

}  // namespace smtpfence
