#include "output/terminal.h"

#include <cerrno>
#include <iostream>
#include <poll.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "base/errors.h"

namespace smtpfence {

bool is_terminal(const std::ostream& out) {
    return &out == &std::cout && ::isatty(STDOUT_FILENO) == 1;
}

StopSignals::StopSignals() {
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    if (int err = pthread_sigmask(SIG_BLOCK, &stop, &previous_); err != 0) {
        throw RuntimeError(describe_errno("block SIGINT and SIGTERM", err));
    }
    fd_ = UniqueFd(::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd_) {
        int err = errno;
        pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
        throw RuntimeError(describe_errno("watch for SIGINT and SIGTERM", err));
    }
}

StopSignals::~StopSignals() {
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
}

bool StopSignals::wait(std::chrono::milliseconds timeout) {
    if (stopped_) return true;
    pollfd pfd{fd_.get(), POLLIN, 0};
    int ms = static_cast<int>(std::max<std::chrono::milliseconds::rep>(timeout.count(), 0));
    if (::poll(&pfd, 1, ms) > 0) {
        signalfd_siginfo info;
        if (::read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) stopped_ = true;
    }
    return stopped_;
}

}  // namespace smtpfence
