// Every setting's default, written once: the CLI's options, the boot config,
// the state file's location and the output all read them from here.
#pragma once

#include <cstdint>

#include "smtpfence_abi.h"

namespace smtpfence {

// Where the program, maps and attachments of the default instance are pinned.
inline constexpr const char* kDefaultPinDir = "/sys/fs/bpf/smtpfence";
// Where the rule set is saved (NAME.rules, NAME from the pin dir).
inline constexpr const char* kDefaultStateDir = "/var/lib/smtpfence";
// The audit log of the default state directory (others keep theirs inside).
inline constexpr const char* kDefaultAuditLog = "/var/log/smtpfence/audit.log";
// What `boot` and `reap --config` read.
inline constexpr const char* kDefaultConfigPath = "/etc/smtpfence/smtpfence.conf";
// Rules per address family when the maps are first created.
inline constexpr uint32_t kDefaultMaxRules = FENCE_DEFAULT_MAX_RULES;

// A block older than this gets a warning in `list` and `status`: senders keep
// the mail a block defers only for their queue lifetime (Postfix
// maximal_queue_lifetime 5 days, Exim's default retry rule about 4 days), then
// bounce it. --warn-block-age / SMTPFENCE_WARN_BLOCK_AGE; 0 = never.
inline constexpr const char* kDefaultWarnBlockAge = "3d";
inline constexpr uint64_t kDefaultWarnBlockAgeSeconds = 3 * 86400;

}  // namespace smtpfence
