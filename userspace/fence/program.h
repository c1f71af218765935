// The embedded BPF object (a bpftool skeleton: the XDP program, the sock_ops
// connection counter and the tc egress pacer), loaded against the pinned maps
// of a pin directory and attached nowhere (fence/attach.h does that).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace smtpfence {

class LoadedProgram {
public:
    // Creates the maps (sized for `max_rules` per family) that are not pinned
    // yet, reuses those that are, loads the programs and initialises the
    // config map (defaults once; this network namespace every time).
    LoadedProgram(const std::string& pin_dir, uint32_t max_rules);
    LoadedProgram(LoadedProgram&&) noexcept;
    ~LoadedProgram();
    int xdp_fd() const;      // the XDP program
    int sockops_fd() const;  // the --max-conns connection counter
    int pace_fd() const;     // the egress program of message pacing

private:
    struct Loaded;  // the skeleton, whose generated header only program.cpp includes
    std::unique_ptr<Loaded> loaded_;
};

}  // namespace smtpfence
