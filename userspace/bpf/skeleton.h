// One owner for any `bpftool gen skeleton` object: destroyed (programs
// unloaded, maps closed, links that are not pinned detached) with its owner.
#pragma once

#include <memory>

namespace smtpfence {

template <typename Skel, void (*Destroy)(Skel*)>
struct SkeletonDestroyer {
    void operator()(Skel* skel) const { Destroy(skel); }
};

// e.g. Skeleton<smtpfence_bpf, smtpfence_bpf__destroy> skel(smtpfence_bpf__open_opts(&opts));
template <typename Skel, void (*Destroy)(Skel*)>
using Skeleton = std::unique_ptr<Skel, SkeletonDestroyer<Skel, Destroy>>;

}  // namespace smtpfence
