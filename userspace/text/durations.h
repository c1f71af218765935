// Time as an admin writes it for a rule's lifetime (`--for 90m`, `--until
// 2026-12-01T08:00`) and as the kernel keeps it (CLOCK_BOOTTIME nanoseconds,
// what bpf_ktime_get_boot_ns() reads), and as output shows it (ages, UTC).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace smtpfence {

// The longest lifetime --for and --until accept: a rule meant to last longer
// than this is a permanent one. Ten years of 365 days (3650d), so that no
// deadline lies beyond ten calendar years, leap days or not.
inline constexpr uint64_t kMaxLifetimeSeconds = 10ull * 365 * 86400;

// Parses "90s", "90m", "2h", "1h30m", "2d12h" (units d, h, m, s; whole numbers;
// at least 1 s, at most kMaxLifetimeSeconds). Throws UsageError naming
// `option` (the option the text came from), with an example.
uint64_t parse_duration(std::string_view text, std::string_view option = "--for");

// Parses an absolute deadline: "2026-12-01T08:00", "2026-12-01T08:00:30", or
// either with a zone: "Z" or "+02:00"/"-05:00". Without a zone it is this
// host's local time (TZ), the way the admin reads the clock. Returns seconds
// since the epoch. Throws UsageError naming the accepted forms.
uint64_t parse_deadline(std::string_view text);

// The deadline of a rule from --for or --until as given (one of them, or
// neither: 0 = never), checked to lie in the future but within
// kMaxLifetimeSeconds of `now_unix`.
uint64_t rule_deadline(const std::string& for_text, const std::string& until_text, uint64_t now_unix);

// "in 1h29m", "in 42s", "never", "expired".
std::string format_time_left(uint64_t expires_unix, uint64_t now_unix);

// The wall clock, in seconds since the epoch.
uint64_t unix_now();
// The same in milliseconds: when a host applied a fleet change, for the latency
// the fleet commands print.
int64_t unix_now_ms();

// CLOCK_BOOTTIME, in nanoseconds: the clock of the kernel's deadlines.
uint64_t boottime_now_ns();

// CLOCK_MONOTONIC, in nanoseconds: the clock of the data path's timestamps
// (sources, events; bpf_ktime_get_coarse_ns).
uint64_t monotonic_now_ns();

// CLOCK_REALTIME minus CLOCK_MONOTONIC, now: add it to a data-path timestamp
// to get nanoseconds since the epoch.
int64_t monotonic_to_unix_offset_ns();

// "42s", "5m", "2h10m", "3d4h".
std::string format_age(uint64_t seconds);
// "2026-11-25T22:10:37Z".
std::string format_utc(uint64_t unix_seconds);

// The CLOCK_BOOTTIME instant at which the wall clock will read
// `expires_unix`, from both clocks read now. A deadline already past maps to
// now (the rule is expired at once).
uint64_t boottime_deadline_ns(uint64_t expires_unix);

}  // namespace smtpfence
