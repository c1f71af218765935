// Pinned maps outlive the binary that made them: every build checks that
// the maps it finds are of its own layout before it reads or loads against
// them, and refuses, with the way to migrate, when they are not.
#pragma once

#include <string>

struct bpf_object;

namespace smtpfence {

// Throws RuntimeError, with the way to migrate, when the pinned maps in
// `pin_dir` were made by a build with another map layout (another
// FENCE_LAYOUT_VERSION, or a map whose key or value size differs from this
// build's). Changes nothing; a pin dir without maps passes.
void check_pinned_layout(const std::string& pin_dir);

// The same check against an opened (not yet loaded) BPF object of this build.
void check_layout_against(const std::string& pin_dir, const bpf_object* obj);

// The config map (opened from `pin_dir`) must be of this build's layout
// before any other map is read: RuntimeError with the way to migrate.
void check_config_layout(const std::string& pin_dir, int config_fd);

// The migration from another layout, step by step, for error messages.
std::string layout_migration_hint(const std::string& pin_dir);

}  // namespace smtpfence
