// Message pacing's side of the network stack, per interface: the tc egress
// filter that steers paced replies (see smtpfence_pace in bpf/), and the HTB
// root qdisc whose classes hold them, one class per paced rule.
//
// This kernel family's way to hold a packet until its time is a qdisc; the
// classes are made with iproute2's `tc`, which every mail host has.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace smtpfence {

// One paced rule's class: FENCE_PACE_QDISC_MAJOR:minor, one packet per interval.
struct PaceClass {
    uint32_t minor = 0;
    uint64_t interval_ns = 0;
};

// The class id (major:minor) the egress program writes into skb->priority.
uint32_t pace_classid(uint32_t minor);

// The HTB rate, in bits/s, that lets one FENCE_PACE_PACKET_COST-byte packet
// through per interval (at least 1).
uint64_t pace_class_rate_bits(uint64_t interval_ns);

// Attaches (or replaces) the egress filter on `ifindex`, creating the clsact
// qdisc when there is none.
void attach_egress(const std::string& ifname, int ifindex, int prog_fd);
// Removes smtpfence's egress filter; the clsact qdisc (which may hold other
// filters) stays. Absent filter: nothing to do.
void detach_egress(const std::string& ifname, int ifindex);

// The interface's root qdisc as tc shows it ("noqueue 0:"), and whether
// smtpfence may use the interface for pacing: its root is the kernel's default
// (handle 0:) or smtpfence's own HTB.
struct RootQdisc {
    std::string kind;
    std::string handle;
    bool ours() const;
    bool replaceable() const;
};
RootQdisc root_qdisc(const std::string& ifname);

// Makes `ifname`'s pacing classes exactly `classes`: installs smtpfence's HTB
// root (every packet not steered into a class passes it unshaped, through
// HTB's direct queue) with the first class, removes it, so that the kernel
// puts its default qdisc back, when `classes` is empty. RuntimeError naming
// the interface and tc's message when tc fails, or when the root qdisc is
// someone else's.
void sync_pace_classes(const std::string& ifname, const std::vector<PaceClass>& classes);

}  // namespace smtpfence
