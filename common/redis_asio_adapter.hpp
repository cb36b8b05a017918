// The Asio event-loop adapter for hiredis's async API, in the shape of hiredis's own adapters/
// (libevent.h, libuv.h): a small events struct, add/del read/write hooks that arm a one-shot
// `async_wait` on hiredis's socket, a handler that calls redisAsyncHandleRead/Write, and cleanup.
// Only common/redis/connection.cpp includes this; everything here runs on the owning connection's strand.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <hiredis/async.h>

#include <csignal>
#include <ctime>
#include <memory>

#include <pthread.h>

namespace warmline::redis::detail {

// One per hiredis context. Owned by shared_ptr rather than by hiredis (libevent.h frees its struct
// in cleanup) because hiredis 0.14 may call cleanup twice, and because a wait handler that has
// just called into hiredis must still be able to look at the struct after hiredis freed the context.
struct asio_events : std::enable_shared_from_this<asio_events> {
    asio_events(const boost::asio::any_io_executor& ex, redisAsyncContext* ac)
        : context(ac), fd(ex, ac->c.fd) {}

    ~asio_events() {
        // hiredis owns the socket and closes it in redisFree; Asio must only forget it.
        if (fd.is_open()) fd.release();
    }

    asio_events(const asio_events&) = delete;
    asio_events& operator=(const asio_events&) = delete;

    redisAsyncContext* context;  // null once cleanup ran: the context is being or has been freed
    boost::asio::posix::stream_descriptor fd;
    bool want_read = false;
    bool want_write = false;
    bool read_armed = false;  // an async_wait(wait_read) is outstanding
    bool write_armed = false;
    bool closed = false;
};

// hiredis 0.14 writes with write(2), not send(MSG_NOSIGNAL), so a write to a socket Redis has
// already closed raises SIGPIPE, whose default action kills the whole service. A library must
// not change the process's signal dispositions, so block SIGPIPE on this thread around the write
// and swallow the one the write raised (the technique libcurl and OpenSSL users rely on).
class sigpipe_guard {
public:
    sigpipe_guard() {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        sigset_t pending;
        sigemptyset(&pending);
        sigpending(&pending);
        already_pending_ = sigismember(&pending, SIGPIPE) == 1;
        blocked_ = pthread_sigmask(SIG_BLOCK, &pipe_, &old_) == 0;
    }
    ~sigpipe_guard() {
        if (!blocked_) return;
        if (!already_pending_) {
            const timespec zero{};
            while (sigtimedwait(&pipe_, nullptr, &zero) > 0) {
            }
        }
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    sigpipe_guard(const sigpipe_guard&) = delete;
    sigpipe_guard& operator=(const sigpipe_guard&) = delete;

private:
    sigset_t pipe_;
    sigset_t old_;
    bool already_pending_ = false;
    bool blocked_ = false;
};

inline void asio_arm(const std::shared_ptr<asio_events>& e,
                     boost::asio::posix::stream_descriptor::wait_type w) {
    const bool reading = w == boost::asio::posix::stream_descriptor::wait_read;
    (reading ? e->read_armed : e->write_armed) = true;
    e->fd.async_wait(w, [e, w, reading](const boost::system::error_code& ec) {
        bool& armed = reading ? e->read_armed : e->write_armed;
        bool& wanted = reading ? e->want_read : e->want_write;
        armed = false;
        // After cleanup the context may already be gone; release() aborts the wait.
        if (e->closed || ec == boost::asio::error::operation_aborted || !wanted) return;
        // Any other error is the socket's; hiredis finds it on the read or write and disconnects.
        if (reading) {
            redisAsyncHandleRead(e->context);
        } else {
            sigpipe_guard guard;
            redisAsyncHandleWrite(e->context);
        }
        // hiredis may have freed the context meanwhile (then cleanup set `closed`), or asked for
        // more (addRead/addWrite while this wait was no longer armed): re-arm only if still wanted.
        if (!e->closed && wanted && !armed) asio_arm(e, w);
    });
}

inline void asio_add_read(void* privdata) {
    auto* e = static_cast<asio_events*>(privdata);
    e->want_read = true;
    if (!e->closed && !e->read_armed)
        asio_arm(e->shared_from_this(), boost::asio::posix::stream_descriptor::wait_read);
}

// An armed wait cannot be cancelled for one direction only (cancel() aborts both), so a deleted
// watch stays armed and its handler ignores the readiness.
inline void asio_del_read(void* privdata) { static_cast<asio_events*>(privdata)->want_read = false; }

inline void asio_add_write(void* privdata) {
    auto* e = static_cast<asio_events*>(privdata);
    e->want_write = true;
    if (!e->closed && !e->write_armed)
        asio_arm(e->shared_from_this(), boost::asio::posix::stream_descriptor::wait_write);
}

inline void asio_del_write(void* privdata) { static_cast<asio_events*>(privdata)->want_write = false; }

// Called by hiredis just before it frees the context (possibly twice in 0.14). Release, never
// close, the descriptor: release() deregisters it from the reactor and aborts both waits.
inline void asio_cleanup(void* privdata) {
    auto* e = static_cast<asio_events*>(privdata);
    e->closed = true;
    e->want_read = e->want_write = false;
    e->context = nullptr;
    if (e->fd.is_open()) e->fd.release();
}

// Attach `ac` to `ex` (a strand: hiredis is not thread-safe). Returns null if something else is
// attached already. Throws boost::system::system_error if the reactor refuses the descriptor.
inline std::shared_ptr<asio_events> asio_attach(redisAsyncContext* ac,
                                                const boost::asio::any_io_executor& ex) {
    if (ac->ev.data != nullptr) return nullptr;
    auto e = std::make_shared<asio_events>(ex, ac);
    ac->ev.addRead = asio_add_read;
    ac->ev.delRead = asio_del_read;
    ac->ev.addWrite = asio_add_write;
    ac->ev.delWrite = asio_del_write;
    ac->ev.cleanup = asio_cleanup;
    ac->ev.data = e.get();
    // Unlike libevent.h, watch only for writability until hiredis asks to read: hiredis 0.14
    // treats the first event of either kind as "connect finished" (it checks SO_ERROR, which is
    // still 0 while the connect is in flight), and writability is what really says so. hiredis
    // adds the read watch itself after its first write.
    asio_add_write(e.get());
    return e;
}

}  // namespace warmline::redis::detail
