// tcpprobe: a tiny TCP listener and client for smtpfence's end-to-end tests
// and lab. No dependencies beyond the C library.
//
//   tcpprobe listen [--banner TEXT] [--die-with-parent] [--v6only] [--hold [--idle-close-ms N]] PORT...
//       Listens on every PORT, IPv4 and IPv6 (one dual-stack socket per port,
//       or an IPv4 socket where IPv6 is unavailable; with --v6only an IPv4
//       socket and an IPv6-only socket per port, as Postfix listens, so that
//       an IPv4 client's accepted socket is AF_INET rather than AF_INET6 with
//       a ::ffff:a.b.c.d peer). Each accepted connection
//       gets the banner (if any) and is closed. Prints "ready" once all ports
//       listen. Exits 0 on SIGTERM or SIGINT. In TEXT, \r, \n and \\ are
//       escapes; a banner not ending in a newline gets "\r\n" appended.
//       --die-with-parent: get SIGTERM when the parent process dies, so that
//       a test script killed with SIGKILL leaves no listener behind.
//       --hold: like an MTA, keep each accepted connection open after the
//       banner (any number of them, one poll loop) and discard what the
//       client sends, until the client closes it (read returns 0: close, the
//       server's FIN follows the client's) or resets it (read fails: close),
//       or, with --idle-close-ms N, until N ms passed without a byte from the
//       client: then the server closes it (FIN) like an MTA's idle timeout
//       closes the session of a client that vanished. Every event is one line
//       on stdout, flushed: "accepted ADDR PORT", "peer-closed ADDR PORT",
//       "peer-reset ADDR PORT", "idle-closed ADDR PORT" (ADDR without the
//       ::ffff: of an IPv4 peer on the dual-stack socket, PORT the peer's).
//
//   tcpprobe connect [--src ADDR] [--timeout-ms N] HOST PORT
//       One connection attempt, bound to ADDR when given. Prints "connected"
//       and the server's first line if one arrives within 200 ms.
//
//   tcpprobe count [--src ADDR] [--timeout-ms N] [--attempts N] [--interval-ms N] HOST PORT
//       N attempts (default 10); prints "ok=X fail=Y".
//       Without --interval-ms (or with 0) they run one after the other.
//       With --interval-ms N, attempt i starts at start + i*N ms whether or
//       not the earlier ones have finished (a timed-out attempt waits its own
//       --timeout-ms, so several are in flight), each with its own timeout:
//       100 attempts at 20 ms take 2 s whatever the server does. The line
//       then also says "span_us=S": microseconds from the first attempt's
//       connect() to the last one's, the window in which the SYNs were sent.
//       With --timeout-ms below 1000 every failed attempt sent exactly one
//       SYN (the kernel's first retransmission comes after 1 s). SIGTERM
//       ends a run with --interval-ms early: no attempt starts after it,
//       those in flight finish, and the line counts the attempts made.
//
//   tcpprobe hold [--src ADDR] [--timeout-ms N] [--noop-ms N] HOST PORT
//       Opens one connection and keeps it, as an SMTP client in a session.
//       Prints "connected" and then "sport PORT" (its local port), flushed;
//       exits 1 like connect when the connection cannot be made. Then reads
//       commands on stdin, one per line:
//         close    close normally (FIN), exit 0;
//         rst      close with SO_LINGER {1, 0}: the kernel sends a RST;
//         abandon  vanish: the connection is dropped by the kernel without a
//                  single packet to the server (see cmd_hold), as when the
//                  client host loses power or its network; exit 0.
//       End of stdin counts as "close". --noop-ms N sends "NOOP\r\n" every
//       N ms, so that a server with an idle timeout keeps the session open
//       (SMTP's way of staying alive). If the server closes the connection,
//       prints "server-closed", closes and exits 0.
//
// Exit codes: 0 connected (connect, hold) / finished (listen, count);
//             1 timed out, refused or unreachable (connect); the reason is on
//               stderr and starts with "timed out", "refused" or "unreachable";
//             2 usage error;
//             3 local failure (socket, bind to --src, listen), so that a test
//               expecting a blocked connection cannot pass on a broken setup.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitLocal = 3;

constexpr int kBannerWaitMs = 200;

const char* const kUsage =
    "usage: tcpprobe listen [--banner TEXT] [--die-with-parent] [--v6only] [--hold [--idle-close-ms N]] PORT...\n"
    "       tcpprobe connect [--src ADDR] [--timeout-ms N] HOST PORT\n"
    "       tcpprobe count [--src ADDR] [--timeout-ms N] [--attempts N] [--interval-ms N] HOST PORT\n"
    "       tcpprobe hold [--src ADDR] [--timeout-ms N] [--noop-ms N] HOST PORT   (stdin: close|rst|abandon)\n"
    "exit: 0 ok, 1 timed out/refused, 2 usage error, 3 local failure\n";

struct UsageError {
    std::string message;
};

struct LocalError {
    std::string message;
};

[[noreturn]] void usage_error(const std::string& message) {
    throw UsageError{message};
}

std::string errno_text(int err) {
    return std::strerror(err);
}

// Strict decimal parse of an unsigned number in [lo, hi].
std::optional<long> parse_number(std::string_view text, long lo, long hi) {
    if (text.empty() || text.size() > 9) return std::nullopt;
    long value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        value = value * 10 + (c - '0');
    }
    if (value < lo || value > hi) return std::nullopt;
    return value;
}

uint16_t parse_port(std::string_view text) {
    auto p = parse_number(text, 1, 65535);
    if (!p) usage_error("bad port '" + std::string(text) + "': expected 1-65535");
    return static_cast<uint16_t>(*p);
}

// Options of one subcommand: "--name VALUE" or "--name=VALUE", anywhere
// before "--"; everything else is positional.
struct Parsed {
    std::vector<std::pair<std::string, std::string>> options;
    std::vector<std::string> positional;

    std::optional<std::string> get(const std::string& name) const {
        std::optional<std::string> found;
        for (const auto& [n, v] : options)
            if (n == name) found = v;  // the last one wins
        return found;
    }
};

// `flags` are options without a value ("--name"); they are stored with "1".
Parsed parse_args(int argc, char** argv, int first, const std::vector<std::string>& known,
                  const std::vector<std::string>& flags = {}) {
    Parsed p;
    bool options_done = false;
    for (int i = first; i < argc; ++i) {
        std::string arg = argv[i];
        if (!options_done && arg == "--") {
            options_done = true;
            continue;
        }
        if (!options_done && arg.size() > 2 && arg.compare(0, 2, "--") == 0) {
            std::string name = arg.substr(2);
            std::optional<std::string> value;
            if (auto eq = name.find('='); eq != std::string::npos) {
                value = name.substr(eq + 1);
                name = name.substr(0, eq);
            }
            bool is_flag = false;
            for (const auto& f : flags) is_flag = is_flag || f == name;
            if (is_flag) {
                if (value) usage_error("option --" + name + " takes no value");
                p.options.emplace_back(name, "1");
                continue;
            }
            bool is_known = false;
            for (const auto& k : known) is_known = is_known || k == name;
            if (!is_known) usage_error("unknown option --" + name);
            if (!value) {
                if (i + 1 >= argc) usage_error("option --" + name + " needs a value");
                value = argv[++i];
            }
            p.options.emplace_back(name, *value);
            continue;
        }
        if (!options_done && arg.size() > 1 && arg[0] == '-' && arg != "-") {
            usage_error("unknown option " + arg);
        }
        p.positional.push_back(arg);
    }
    return p;
}

// ---------------------------------------------------------------- listen

volatile sig_atomic_t g_stop = 0;

void on_stop_signal(int) {
    g_stop = 1;
}

std::string unescape_banner(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
            char n = text[i + 1];
            if (n == 'r') {
                out += '\r';
                ++i;
                continue;
            }
            if (n == 'n') {
                out += '\n';
                ++i;
                continue;
            }
            if (n == '\\') {
                out += '\\';
                ++i;
                continue;
            }
        }
        out += text[i];
    }
    if (!out.empty() && out.back() != '\n') out += "\r\n";
    return out;
}

int bind_and_listen(int fd, const sockaddr* sa, socklen_t len, const std::string& where) {
    if (bind(fd, sa, len) != 0) {
        int e = errno;
        close(fd);
        throw LocalError{"cannot bind " + where + ": " + errno_text(e)};
    }
    if (listen(fd, 128) != 0) {
        int e = errno;
        close(fd);
        throw LocalError{"listen on " + where + ": " + errno_text(e)};
    }
    return fd;
}

int ipv4_listener(uint16_t port) {
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw LocalError{"socket: " + errno_text(errno)};
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    sa.sin_port = htons(port);
    return bind_and_listen(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa, "0.0.0.0:" + std::to_string(port));
}

// The listening sockets of one port. By default one dual-stack socket (IPv4
// clients appear on it as ::ffff:a.b.c.d), or an IPv4 socket where IPv6 is
// unavailable. With `v6only`, an IPv4 socket and an IPv6-only socket, as
// Postfix (inet_protocols = all) and other MTAs do: IPv4 clients then get
// AF_INET sockets.
std::vector<int> open_listeners(uint16_t port, bool v6only) {
    int one = 1;
    int v6only_value = v6only ? 1 : 0;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        if (errno != EAFNOSUPPORT) throw LocalError{"socket: " + errno_text(errno)};
        return {ipv4_listener(port)};  // IPv6 disabled: IPv4 only
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only_value, sizeof v6only_value) != 0) {
        int e = errno;
        close(fd);
        throw LocalError{std::string("cannot set IPV6_V6ONLY on the IPv6 socket: ") + errno_text(e)};
    }
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_addr = in6addr_any;
    sa.sin6_port = htons(port);
    std::vector<int> fds{
        bind_and_listen(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa, "[::]:" + std::to_string(port))};
    if (v6only) fds.push_back(ipv4_listener(port));
    return fds;
}

long long now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

long long now_us() {
    using namespace std::chrono;
    return duration_cast<microseconds>(steady_clock::now().time_since_epoch()).count();
}

// "ADDR PORT" of a peer; an IPv4 peer of the dual-stack socket is shown as
// plain IPv4 (198.51.100.10, not ::ffff:198.51.100.10).
std::string peer_text(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss.ss_family == AF_INET) {
        const auto& sin = reinterpret_cast<const sockaddr_in&>(ss);
        inet_ntop(AF_INET, &sin.sin_addr, buf, sizeof buf);
        port = ntohs(sin.sin_port);
    } else if (ss.ss_family == AF_INET6) {
        const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(ss);
        if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
            inet_ntop(AF_INET, &sin6.sin6_addr.s6_addr[12], buf, sizeof buf);
        } else {
            inet_ntop(AF_INET6, &sin6.sin6_addr, buf, sizeof buf);
        }
        port = ntohs(sin6.sin6_port);
    }
    return std::string(buf) + " " + std::to_string(port);
}

void event(const std::string& what, const std::string& peer) {
    std::printf("%s %s\n", what.c_str(), peer.c_str());
    std::fflush(stdout);
}

// A connection kept open by `listen --hold`.
struct Held {
    int fd;
    std::string peer;
    long long last_activity_ms;  // accept, or the last byte from the client
};

int cmd_listen(int argc, char** argv) {
    pid_t parent = getppid();
    Parsed p = parse_args(argc, argv, 2, {"banner", "idle-close-ms"}, {"die-with-parent", "hold", "v6only"});
    if (p.positional.empty()) usage_error("listen needs at least one PORT");
    std::vector<uint16_t> ports;
    for (const auto& t : p.positional) ports.push_back(parse_port(t));
    std::string banner = unescape_banner(p.get("banner").value_or(""));
    bool hold = p.get("hold").has_value();
    bool v6only = p.get("v6only").has_value();
    long idle_close_ms = 0;  // 0: never
    if (auto t = p.get("idle-close-ms")) {
        if (!hold) usage_error("--idle-close-ms needs --hold");
        auto v = parse_number(*t, 1, 86400000);
        if (!v) usage_error("bad --idle-close-ms '" + *t + "': expected 1-86400000");
        idle_close_ms = *v;
    }

    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: poll() must return EINTR
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGINT, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    if (p.get("die-with-parent")) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) throw LocalError{"prctl: " + errno_text(errno)};
        if (getppid() != parent) return kExitOk;  // the parent is already gone
    }

    std::vector<int> listeners;
    for (uint16_t port : ports) {
        for (int fd : open_listeners(port, v6only)) listeners.push_back(fd);
    }
    std::vector<Held> held;

    std::fputs("ready\n", stdout);
    std::fflush(stdout);

    std::vector<pollfd> fds;
    while (!g_stop) {
        // The listening sockets first, then the held connections, in order.
        fds.clear();
        for (int fd : listeners) fds.push_back({fd, POLLIN, 0});
        for (const auto& h : held) fds.push_back({h.fd, POLLIN, 0});
        int timeout = -1;
        if (idle_close_ms && !held.empty()) {
            long long first = held.front().last_activity_ms;
            for (const auto& h : held) first = std::min(first, h.last_activity_ms);
            timeout = static_cast<int>(std::max(0LL, first + idle_close_ms - now_ms()));
        }
        int n = poll(fds.data(), fds.size(), timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw LocalError{"poll: " + errno_text(errno)};
        }
        std::vector<Held> still_held;
        for (size_t i = 0; i < held.size(); ++i) {
            Held& h = held[i];
            short rev = fds[listeners.size() + i].revents;
            bool done = false;
            if (rev & (POLLIN | POLLHUP | POLLERR)) {
                char buf[4096];
                ssize_t got = recv(h.fd, buf, sizeof buf, MSG_DONTWAIT);
                if (got > 0) {
                    h.last_activity_ms = now_ms();  // discarded; the client is alive
                } else if (got == 0) {
                    event("peer-closed", h.peer);
                    done = true;
                } else if (errno != EAGAIN && errno != EINTR) {
                    event(errno == ECONNRESET ? "peer-reset" : "peer-error", h.peer);
                    done = true;
                }
            }
            if (!done && idle_close_ms && now_ms() - h.last_activity_ms >= idle_close_ms) {
                event("idle-closed", h.peer);
                done = true;
            }
            if (done) {
                close(h.fd);  // FIN (or nothing more, after a reset)
            } else {
                still_held.push_back(h);
            }
        }
        held.swap(still_held);
        for (size_t i = 0; i < listeners.size(); ++i) {
            if (!(fds[i].revents & POLLIN)) continue;
            for (;;) {
                sockaddr_storage peer{};
                socklen_t peer_len = sizeof peer;
                int c = accept4(listeners[i], reinterpret_cast<sockaddr*>(&peer), &peer_len,
                                SOCK_CLOEXEC | (hold ? SOCK_NONBLOCK : 0));
                if (c < 0) break;  // EAGAIN, or a connection reset before accept
                if (!banner.empty()) {
                    // A fresh socket's send buffer always has room for a line.
                    (void)send(c, banner.data(), banner.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                }
                if (hold) {
                    held.push_back({c, peer_text(peer), now_ms()});
                    event("accepted", held.back().peer);
                    continue;
                }
                shutdown(c, SHUT_WR);
                close(c);
            }
        }
    }
    for (const auto& h : held) close(h.fd);
    for (int fd : listeners) close(fd);
    return kExitOk;
}

// ---------------------------------------------------------------- connect

struct Target {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = AF_UNSPEC;
};

std::optional<Target> resolve(const std::string& host, const char* service, int family, bool passive) {
    addrinfo hints{};
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? (AI_NUMERICHOST | AI_PASSIVE) : 0;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), service, &hints, &res) != 0 || res == nullptr) return std::nullopt;
    Target t;
    std::memcpy(&t.addr, res->ai_addr, res->ai_addrlen);
    t.len = res->ai_addrlen;
    t.family = res->ai_family;
    freeaddrinfo(res);
    return t;
}

struct ProbeOptions {
    std::optional<std::string> src;
    int timeout_ms = 1000;
    Target target;
    Target source;
    std::string describe;  // "HOST port PORT [from SRC]"
};

ProbeOptions parse_probe(const Parsed& p) {
    if (p.positional.size() != 2) usage_error("expected HOST PORT");
    ProbeOptions o;
    const std::string& host = p.positional[0];
    uint16_t port = parse_port(p.positional[1]);
    if (auto t = p.get("timeout-ms")) {
        auto v = parse_number(*t, 1, 600000);
        if (!v) usage_error("bad --timeout-ms '" + *t + "': expected 1-600000");
        o.timeout_ms = static_cast<int>(*v);
    }
    o.src = p.get("src");
    int family = AF_UNSPEC;
    if (o.src) {
        auto s = resolve(*o.src, "0", AF_UNSPEC, true);
        if (!s) usage_error("bad --src '" + *o.src + "': expected a numeric IPv4 or IPv6 address");
        o.source = *s;
        family = s->family;
    }
    auto t = resolve(host, std::to_string(port).c_str(), family, false);
    if (!t) {
        usage_error("cannot resolve '" + host + "'" +
                    (o.src ? " as an address of the same family as --src" : std::string()));
    }
    o.target = *t;
    o.describe = host + " port " + std::to_string(port) + (o.src ? " from " + *o.src : std::string());
    return o;
}

enum class Outcome { Connected, TimedOut, Refused };

struct ProbeResult {
    Outcome outcome;
    std::string detail;  // why it failed, or the banner line
};

// Reads up to one line within `wait_ms`; returns it without the line end.
std::string read_line(int fd, int wait_ms) {
    std::string line;
    long long deadline = now_ms() + wait_ms;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) break;
        pollfd pfd{fd, POLLIN, 0};
        int n = poll(&pfd, 1, static_cast<int>(left));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        char buf[512];
        ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (got <= 0) break;
        line.append(buf, static_cast<size_t>(got));
        if (line.find('\n') != std::string::npos) break;
        if (line.size() > 4096) break;
    }
    if (auto nl = line.find('\n'); nl != std::string::npos) line.resize(nl);
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    return line;
}

// Owns a socket until released.
struct Socket {
    int fd = -1;
    Socket() = default;
    explicit Socket(int f) : fd(f) {}
    Socket(Socket&& o) noexcept : fd(o.fd) { o.fd = -1; }
    Socket& operator=(Socket&& o) noexcept {
        if (this != &o) {
            reset();
            fd = o.fd;
            o.fd = -1;
        }
        return *this;
    }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;
    ~Socket() { reset(); }
    void reset() {
        if (fd >= 0) close(fd);
        fd = -1;
    }
};

ProbeResult timed_out(const ProbeOptions& o) {
    return {Outcome::TimedOut, "timed out after " + std::to_string(o.timeout_ms) + " ms: " + o.describe};
}

// Creates a non-blocking socket bound to --src and starts connecting it. Returns
// a result when the outcome is known at once (an immediate refusal, or an
// unreachable network); otherwise the connection is in progress on `sock`.
std::optional<ProbeResult> start_attempt(const ProbeOptions& o, Socket& sock) {
    sock = Socket(socket(o.target.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (sock.fd < 0) throw LocalError{"socket: " + errno_text(errno)};
    if (o.src) {
        if (bind(sock.fd, reinterpret_cast<const sockaddr*>(&o.source.addr), o.source.len) != 0) {
            throw LocalError{"cannot bind to --src " + *o.src + ": " + errno_text(errno)};
        }
    }
    if (connect(sock.fd, reinterpret_cast<const sockaddr*>(&o.target.addr), o.target.len) == 0) {
        return ProbeResult{Outcome::Connected, ""};
    }
    if (errno == EINPROGRESS) return std::nullopt;
    if (errno == ECONNREFUSED) return ProbeResult{Outcome::Refused, "refused: " + o.describe};
    int e = errno;
    if (e == ENETUNREACH || e == EHOSTUNREACH || e == ETIMEDOUT) {
        return ProbeResult{Outcome::Refused, "unreachable: " + o.describe + ": " + errno_text(e)};
    }
    throw LocalError{"connect to " + o.describe + ": " + errno_text(e)};
}

// The outcome of a connection in progress that poll() reported writable.
ProbeResult finish_attempt(const ProbeOptions& o, int fd) {
    int soerr = 0;
    socklen_t len = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (soerr == 0) return {Outcome::Connected, ""};
    if (soerr == ETIMEDOUT) return {Outcome::TimedOut, "timed out (kernel): " + o.describe};
    return {Outcome::Refused, "refused: " + o.describe + ": " + errno_text(soerr)};
}

// One connection attempt within --timeout-ms. On success the connected
// socket is left in `sock`.
ProbeResult open_connection(const ProbeOptions& o, Socket& sock) {
    long long start = now_ms();
    if (auto r = start_attempt(o, sock)) return *r;
    for (;;) {
        long long left = start + o.timeout_ms - now_ms();
        if (left <= 0) return timed_out(o);
        pollfd pfd{sock.fd, POLLOUT, 0};
        int n = poll(&pfd, 1, static_cast<int>(left));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw LocalError{"poll: " + errno_text(errno)};
        if (n > 0) return finish_attempt(o, sock.fd);
    }
}

ProbeResult probe_once(const ProbeOptions& o, bool want_banner) {
    Socket sock;
    ProbeResult r = open_connection(o, sock);
    if (r.outcome == Outcome::Connected && want_banner) r.detail = read_line(sock.fd, kBannerWaitMs);
    return r;
}

int cmd_connect(int argc, char** argv) {
    Parsed p = parse_args(argc, argv, 2, {"src", "timeout-ms"});
    ProbeOptions o = parse_probe(p);
    ProbeResult r = probe_once(o, true);
    if (r.outcome != Outcome::Connected) {
        std::fprintf(stderr, "%s\n", r.detail.c_str());
        return kExitFailed;
    }
    std::puts("connected");
    if (!r.detail.empty()) std::puts(r.detail.c_str());
    return kExitOk;
}

// count --interval-ms: attempt i starts at start + i*interval, each waits its
// own timeout, so several can be in flight at once.
void count_paced(const ProbeOptions& o, long attempts, long interval_ms, long& ok, long& fail, long long& span_us) {
    struct InFlight {
        Socket sock;
        long long deadline_us;
    };
    std::vector<InFlight> flying;
    const long long t0 = now_us();
    long long first_us = -1, last_us = -1;
    long started = 0;
    std::vector<pollfd> fds;
    while (started < attempts || !flying.empty()) {
        if (g_stop) attempts = started;
        long long now = now_us();
        if (started < attempts && now >= t0 + started * interval_ms * 1000) {
            Socket sock;
            last_us = now_us();
            if (first_us < 0) first_us = last_us;
            ++started;
            if (auto r = start_attempt(o, sock)) {
                (r->outcome == Outcome::Connected ? ok : fail)++;
            } else {
                flying.push_back({std::move(sock), last_us + o.timeout_ms * 1000LL});
            }
            continue;
        }
        // Sleep until the next start, the nearest deadline, or a connection.
        long long wake = started < attempts ? t0 + started * interval_ms * 1000 : -1;
        for (const auto& f : flying) wake = wake < 0 ? f.deadline_us : std::min(wake, f.deadline_us);
        fds.clear();
        for (const auto& f : flying) fds.push_back({f.sock.fd, POLLOUT, 0});
        // Round up: waking early only loops once more.
        int timeout = static_cast<int>(std::max(0LL, (wake - now + 999) / 1000));
        int n = poll(fds.data(), fds.size(), timeout);
        if (n < 0 && errno != EINTR) throw LocalError{"poll: " + errno_text(errno)};
        now = now_us();
        std::vector<InFlight> still;
        for (size_t i = 0; i < flying.size(); ++i) {
            if (n > 0 && fds[i].revents) {
                (finish_attempt(o, flying[i].sock.fd).outcome == Outcome::Connected ? ok : fail)++;
            } else if (now >= flying[i].deadline_us) {
                ++fail;  // timed out; closing a socket in SYN-SENT sends nothing
            } else {
                still.push_back(std::move(flying[i]));
            }
        }
        flying.swap(still);
    }
    span_us = last_us - first_us;
}

int cmd_count(int argc, char** argv) {
    Parsed p = parse_args(argc, argv, 2, {"src", "timeout-ms", "attempts", "interval-ms"});
    ProbeOptions o = parse_probe(p);
    long attempts = 10;
    if (auto a = p.get("attempts")) {
        auto v = parse_number(*a, 1, 100000);
        if (!v) usage_error("bad --attempts '" + *a + "': expected 1-100000");
        attempts = *v;
    }
    long interval_ms = 0;
    if (auto a = p.get("interval-ms")) {
        auto v = parse_number(*a, 0, 600000);
        if (!v) usage_error("bad --interval-ms '" + *a + "': expected 0-600000");
        interval_ms = *v;
    }
    long ok = 0, fail = 0;
    if (interval_ms > 0) {
        struct sigaction sa {};
        sa.sa_handler = on_stop_signal;
        sigaction(SIGTERM, &sa, nullptr);
        long long span_us = 0;
        count_paced(o, attempts, interval_ms, ok, fail, span_us);
        std::printf("ok=%ld fail=%ld span_us=%lld\n", ok, fail, span_us);
        return kExitOk;
    }
    for (long i = 0; i < attempts; ++i) {
        ProbeResult r = probe_once(o, false);
        if (r.outcome == Outcome::Connected) {
            ++ok;
        } else {
            ++fail;
        }
    }
    std::printf("ok=%ld fail=%ld\n", ok, fail);
    return kExitOk;
}

// ---------------------------------------------------------------- hold

uint16_t local_port(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in&>(ss).sin_port);
    return ntohs(reinterpret_cast<sockaddr_in6&>(ss).sin6_port);
}

// A client that vanishes. close() or exit would make the kernel send a FIN
// (or a RST, with unread data or a zero linger), so the server would learn
// that the session is over. A host that loses power or its network sends
// nothing; its peer only finds out by its own timeout. TCP_REPAIR (the
// socket option CRIU uses to checkpoint live connections; needs
// CAP_NET_ADMIN) puts the socket in a mode where closing it tears it down
// locally without a packet: tcp_close() -> tcp_disconnect() sets
// ECONNABORTED instead of sending a RST, and no FIN is queued. The server
// keeps an ESTABLISHED socket to a peer that no longer has one, exactly as
// after a crash; if the server later sends (its FIN after an idle timeout),
// this kernel answers with a RST, as a rebooted host would.
// Nothing is left to clean up (no route or filter to remove), which is why
// this is used rather than blackholing the path and killing the process.
void vanish(int fd) {
    int on = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, sizeof on) != 0) {
        throw LocalError{"abandon: TCP_REPAIR (needs CAP_NET_ADMIN): " + errno_text(errno)};
    }
    close(fd);
}

// Reads whatever the server sent and nobody read yet: closing a socket with
// unread data makes the kernel send a RST instead of a FIN.
void drain(int fd) {
    char buf[4096];
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
}

int cmd_hold(int argc, char** argv) {
    Parsed p = parse_args(argc, argv, 2, {"src", "timeout-ms", "noop-ms"});
    ProbeOptions o = parse_probe(p);
    long noop_ms = 0;
    if (auto t = p.get("noop-ms")) {
        auto v = parse_number(*t, 1, 3600000);
        if (!v) usage_error("bad --noop-ms '" + *t + "': expected 1-3600000");
        noop_ms = *v;
    }
    signal(SIGPIPE, SIG_IGN);
    Socket sock;
    ProbeResult r = open_connection(o, sock);
    if (r.outcome != Outcome::Connected) {
        std::fprintf(stderr, "%s\n", r.detail.c_str());
        return kExitFailed;
    }
    std::printf("connected\nsport %u\n", local_port(sock.fd));
    std::fflush(stdout);

    static const char kNoop[] = "NOOP\r\n";
    long long next_noop = noop_ms ? now_ms() + noop_ms : 0;
    std::string input;
    for (;;) {
        pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {sock.fd, POLLIN, 0}};
        int timeout = noop_ms ? static_cast<int>(std::max(0LL, next_noop - now_ms())) : -1;
        int n = poll(fds, 2, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw LocalError{"poll: " + errno_text(errno)};
        }
        if (noop_ms && now_ms() >= next_noop) {
            (void)send(sock.fd, kNoop, sizeof kNoop - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            next_noop = now_ms() + noop_ms;
        }
        if (fds[1].revents) {
            char buf[4096];
            ssize_t got = recv(sock.fd, buf, sizeof buf, MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                std::puts(got == 0 ? "server-closed" : "server-reset");
                std::fflush(stdout);
                return kExitOk;  // the Socket closes
            }
            // The banner, replies: read and forgotten.
        }
        if (fds[0].revents) {
            char buf[256];
            ssize_t got = read(STDIN_FILENO, buf, sizeof buf);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) {
                drain(sock.fd);
                return kExitOk;  // end of input: a normal close
            }
            input.append(buf, static_cast<size_t>(got));
            size_t nl;
            while ((nl = input.find('\n')) != std::string::npos) {
                std::string cmd = input.substr(0, nl);
                input.erase(0, nl + 1);
                while (!cmd.empty() && (cmd.back() == '\r' || cmd.back() == ' ')) cmd.pop_back();
                if (cmd == "close") {
                    drain(sock.fd);
                    return kExitOk;  // the Socket closes: FIN
                }
                if (cmd == "rst") {
                    linger l{1, 0};
                    if (setsockopt(sock.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) != 0) {
                        throw LocalError{"SO_LINGER: " + errno_text(errno)};
                    }
                    return kExitOk;  // closing with a zero linger sends a RST
                }
                if (cmd == "abandon") {
                    vanish(sock.fd);
                    sock.fd = -1;
                    return kExitOk;
                }
                if (!cmd.empty()) std::fprintf(stderr, "tcpprobe hold: unknown command '%s'\n", cmd.c_str());
            }
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs(kUsage, stderr);
        return kExitUsage;
    }
    std::string_view cmd = argv[1];
    try {
        if (cmd == "listen") return cmd_listen(argc, argv);
        if (cmd == "connect") return cmd_connect(argc, argv);
        if (cmd == "count") return cmd_count(argc, argv);
        if (cmd == "hold") return cmd_hold(argc, argv);
        if (cmd == "--help" || cmd == "-h" || cmd == "help") {
            std::fputs(kUsage, stdout);
            return kExitOk;
        }
        usage_error("unknown command '" + std::string(cmd) + "'");
    } catch (const UsageError& e) {
        std::fprintf(stderr, "tcpprobe: %s\n%s", e.message.c_str(), kUsage);
        return kExitUsage;
    } catch (const LocalError& e) {
        std::fprintf(stderr, "tcpprobe: %s\n", e.message.c_str());
        return kExitLocal;
    }
}
