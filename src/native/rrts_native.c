// rrts_native: the few Linux process primitives fork mode needs and Node lacks: pidfd_open, pidfd_send_signal,
// a libuv poll on a pidfd (readable = the process exited), PR_SET_CHILD_SUBREAPER, SO_PEERCRED, and one unix
// datagram send (systemd notifications), a bare write(2) for the HTTP hot path, a close-on-exec dup(2) that
// moves an accepted socket into one Node reads with `onread`, and an SCM_RIGHTS send (fork workers' pipes).
// Node-API only (NAPI_VERSION 8, set in binding.gyp), so one build serves every Node >= 20 on the same platform.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#ifdef __linux__
#include <sys/prctl.h>
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#endif

// ---------------------------------------------------------------------------------------------------------------
// Errors: an Error with `code` = the errno name (as Node's own system errors), plus `errno` and `syscall`.

static const char *errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EINTR: return "EINTR";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case ECHILD: return "ECHILD";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENFILE: return "ENFILE";
    case EMFILE: return "EMFILE";
    case ENOSYS: return "ENOSYS";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOTCONN: return "ENOTCONN";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EMSGSIZE: return "EMSGSIZE";
    default: return NULL;
  }
}

// Throws unless an exception is already pending (a failed napi call may have left one). `call` is what the
// message names (the syscall with its arguments when they help); `syscall_name` goes to error.syscall.
static void throw_errno_call(napi_env env, const char *syscall_name, const char *call, int err) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;

  char code_buf[24];
  const char *code = errno_name(err);
  if (code == NULL) {
    snprintf(code_buf, sizeof code_buf, "E%d", err);
    code = code_buf;
  }
  char message[256];
  snprintf(message, sizeof message, "%s failed: %s (%s)", call, strerror(err), code);

  napi_value code_value, message_value, error, errno_value, syscall_value;
  if (napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value) != napi_ok ||
      napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value) != napi_ok ||
      napi_create_error(env, code_value, message_value, &error) != napi_ok) {
    napi_throw_error(env, code, message);
    return;
  }
  if (napi_create_int32(env, err, &errno_value) == napi_ok) napi_set_named_property(env, error, "errno", errno_value);
  if (napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &syscall_value) == napi_ok) {
    napi_set_named_property(env, error, "syscall", syscall_value);
  }
  napi_throw(env, error);
}

static void throw_errno(napi_env env, const char *syscall_name, int err) {
  throw_errno_call(env, syscall_name, syscall_name, err);
}

#define NAPI_TRY(env, call)                                                  \
  do {                                                                       \
    if ((call) != napi_ok) {                                                 \
      bool pending_ = false;                                                 \
      napi_is_exception_pending((env), &pending_);                           \
      if (!pending_) napi_throw_error((env), NULL, "N-API call failed: " #call); \
      return NULL;                                                           \
    }                                                                        \
  } while (0)

// Reads argument `index` as an integer in [min, max]; throws a TypeError/RangeError naming it otherwise.
static bool get_int_arg(napi_env env, napi_value *argv, size_t argc, size_t index, const char *name, int64_t min,
                        int64_t max, int64_t *out) {
  char message[128];
  napi_valuetype type = napi_undefined;
  if (index >= argc || napi_typeof(env, argv[index], &type) != napi_ok || type != napi_number) {
    snprintf(message, sizeof message, "%s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
    return false;
  }
  double value = 0;
  napi_get_value_double(env, argv[index], &value);
  if (!(value >= (double)min && value <= (double)max) || value != (double)(int64_t)value) {
    snprintf(message, sizeof message, "%s must be an integer in [%lld, %lld]", name, (long long)min, (long long)max);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", message);
    return false;
  }
  *out = (int64_t)value;
  return true;
}

static bool get_fd_arg(napi_env env, napi_value *argv, size_t argc, size_t index, int *fd) {
  int64_t value = 0;
  if (!get_int_arg(env, argv, argc, index, "fd", 0, INT32_MAX, &value)) return false;
  *fd = (int)value;
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// Raw syscalls. Elsewhere than Linux they fail with ENOSYS so the addon still builds and loads (exec mode only).

static int sys_pidfd_open(pid_t pid) {
#ifdef __linux__
  return (int)syscall(SYS_pidfd_open, pid, 0);
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

static int sys_pidfd_send_signal(int fd, int sig) {
#ifdef __linux__
  return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
#else
  (void)fd;
  (void)sig;
  errno = ENOSYS;
  return -1;
#endif
}

// ---------------------------------------------------------------------------------------------------------------
// pidfdOpen(pid) -> fd, pidfdSendSignal(fd, signal), closeFd(fd)

static napi_value pidfd_open_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_TRY(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t pid = 0;
  if (!get_int_arg(env, argv, argc, 0, "pid", 1, INT32_MAX, &pid)) return NULL;

  int fd = sys_pidfd_open((pid_t)pid);
  if (fd < 0) {
    int err = errno;
    char call[48];
    snprintf(call, sizeof call, "pidfd_open(%lld)", (long long)pid);
    throw_errno_call(env, "pidfd_open", call, err);
    return NULL;
  }
  napi_value result;
  NAPI_TRY(env, napi_create_int32(env, fd, &result));
  return result;
}

static napi_value pidfd_send_signal_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_TRY(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd = -1;
  int64_t sig = 0;
  if (!get_fd_arg(env, argv, argc, 0, &fd)) return NULL;
  if (!get_int_arg(env, argv, argc, 1, "signal", 0, 64, &sig)) return NULL;

  if (sys_pidfd_send_signal(fd, (int)sig) < 0) {
    int err = errno;
    char call[64];
    snprintf(call, sizeof call, "pidfd_send_signal(fd %d, signal %lld)", fd, (long long)sig);
    throw_errno_call(env, "pidfd_send_signal", call, err);
    return NULL;
  }
  return NULL;
}

static napi_value close_fd_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_TRY(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd = -1;
  if (!get_fd_arg(env, argv, argc, 0, &fd)) return NULL;
  // On Linux the fd is released even when close() reports EINTR, so that is not an error worth throwing.
  if (close(fd) < 0 && errno != EINTR) throw_errno(env, "close", errno);
  return NULL;
}

// ---------------------------------------------------------------------------------------------------------------
// setChildSubreaper(), isChildSubreaper()

static napi_value set_child_subreaper_js(napi_env env, napi_callback_info info) {
  (void)info;
#ifdef __linux__
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) throw_errno(env, "prctl(PR_SET_CHILD_SUBREAPER)", errno);
#else
  throw_errno(env, "prctl(PR_SET_CHILD_SUBREAPER)", ENOSYS);
#endif
  return NULL;
}

static napi_value is_child_subreaper_js(napi_env env, napi_callback_info info) {
  (void)info;
  int value = 0;
#ifdef __linux__
  if (prctl(PR_GET_CHILD_SUBREAPER, &value, 0, 0, 0) < 0) {
    throw_errno(env, "prctl(PR_GET_CHILD_SUBREAPER)", errno);
    return NULL;
  }
#endif
  napi_value result;
  NAPI_TRY(env, napi_get_boolean(env, value != 0, &result));
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// peerCred(fd) -> { pid, uid, gid } of the process at the other end of a connected unix socket.

static napi_value peer_cred_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_TRY(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd = -1;
  if (!get_fd_arg(env, argv, argc, 0, &fd)) return NULL;

#ifdef SO_PEERCRED
  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
    return NULL;
  }
  napi_value result, pid, uid, gid;
  NAPI_TRY(env, napi_create_object(env, &result));
  NAPI_TRY(env, napi_create_int32(env, cred.pid, &pid));
  NAPI_TRY(env, napi_create_uint32(env, cred.uid, &uid));
  NAPI_TRY(env, napi_create_uint32(env, cred.gid, &gid));
  NAPI_TRY(env, napi_set_named_property(env, result, "pid", pid));
  NAPI_TRY(env, napi_set_named_property(env, result, "uid", uid));
  NAPI_TRY(env, napi_set_named_property(env, result, "gid", gid));
  return result;
#else
  throw_errno(env, "getsockopt(SO_PEERCRED)", ENOSYS);
  return NULL;
#endif
}

// ---------------------------------------------------------------------------------------------------------------
// watchPidfd(fd, callback) -> { close(), unref(), ref() }
//
// A watch has two owners: the libuv poll handle and the JS handle object (napi_wrap). The memory is freed when
// both are done: the poll's close callback has run and the JS object has been finalized. The JS object may be
// collected while the poll is still active; the watch then keeps running (like a timer nobody holds) and still
// calls back. The pidfd itself belongs to the caller and is never closed here.

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref callback;            // strong while watching; deleted when it fires or is closed
  napi_async_context context;   // for napi_make_callback (async_hooks, domains)
  bool polling;                 // uv_poll_init succeeded and uv_close has not been called yet
  bool uv_closed;               // the close callback ran
  bool js_alive;                // the JS handle object has not been finalized
  // Held from uv_poll_init until the poll's close callback ran, so that a worker thread's teardown waits for
  // that callback before it unloads the addon (the callback's code lives here).
  napi_async_cleanup_hook_handle teardown;
} pidfd_watch;

static void maybe_free(pidfd_watch *watch) {
  if (watch->uv_closed && !watch->js_alive) free(watch);
}

static void on_poll_closed(uv_handle_t *handle) {
  pidfd_watch *watch = (pidfd_watch *)handle->data;
  if (watch->teardown != NULL) {
    napi_remove_async_cleanup_hook(watch->teardown);
    watch->teardown = NULL;
  }
  watch->uv_closed = true;
  maybe_free(watch);
}

static void stop_poll(pidfd_watch *watch) {
  if (!watch->polling) return;
  watch->polling = false;
  uv_poll_stop(&watch->poll);
  uv_close((uv_handle_t *)&watch->poll, on_poll_closed);
}

// When the environment goes away (a worker thread ends) an active poll must not be left on the loop; the hook
// is done (removed) in on_poll_closed.
static void on_env_teardown(napi_async_cleanup_hook_handle hook, void *arg) {
  (void)hook;
  stop_poll((pidfd_watch *)arg);
}

// Stops the poll and drops every JS-side resource; must run on the JS thread with the env alive.
static void release_watch(pidfd_watch *watch) {
  stop_poll(watch);
  if (watch->context != NULL) {
    napi_async_destroy(watch->env, watch->context);
    watch->context = NULL;
  }
  if (watch->callback != NULL) {
    napi_delete_reference(watch->env, watch->callback);
    watch->callback = NULL;
  }
}

static void on_pidfd_readable(uv_poll_t *handle, int status, int events) {
  (void)status;  // an error (the fd closed under us) also ends the watch: the caller is told the same way
  (void)events;
  pidfd_watch *watch = (pidfd_watch *)handle->data;
  napi_env env = watch->env;
  if (watch->callback == NULL) {
    stop_poll(watch);
    return;
  }

  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    release_watch(watch);
    return;
  }
  napi_value callback = NULL, recv = NULL;
  napi_get_reference_value(env, watch->callback, &callback);
  napi_get_global(env, &recv);  // napi_make_callback needs an object as `this`
  napi_async_context context = watch->context;
  watch->context = NULL;  // destroyed below, after the call
  release_watch(watch);   // once only: the poll is stopped before the callback can run again

  if (callback != NULL) {
    napi_value ignored;
    napi_make_callback(env, context, recv, callback, 0, NULL, &ignored);
    // No JS frame is below us to rethrow a pending exception: hand it to process 'uncaughtException'.
    bool pending = false;
    napi_value error;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
        napi_get_and_clear_last_exception(env, &error) == napi_ok) {
      napi_fatal_exception(env, error);
    }
  }
  if (context != NULL) napi_async_destroy(env, context);
  napi_close_handle_scope(env, scope);
}

static pidfd_watch *unwrap_this(napi_env env, napi_callback_info info, napi_value *this_out) {
  napi_value this_arg;
  void *data = NULL;
  if (napi_get_cb_info(env, info, NULL, NULL, &this_arg, NULL) != napi_ok) return NULL;
  if (napi_unwrap(env, this_arg, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "not a pidfd watch handle");
    return NULL;
  }
  if (this_out != NULL) *this_out = this_arg;
  return (pidfd_watch *)data;
}

static napi_value watch_close_js(napi_env env, napi_callback_info info) {
  pidfd_watch *watch = unwrap_this(env, info, NULL);
  if (watch != NULL) release_watch(watch);  // idempotent: a second close, or a close after the callback, is a no-op
  return NULL;
}

static napi_value watch_unref_js(napi_env env, napi_callback_info info) {
  napi_value this_arg;
  pidfd_watch *watch = unwrap_this(env, info, &this_arg);
  if (watch == NULL) return NULL;
  if (watch->polling) uv_unref((uv_handle_t *)&watch->poll);
  return this_arg;
}

static napi_value watch_ref_js(napi_env env, napi_callback_info info) {
  napi_value this_arg;
  pidfd_watch *watch = unwrap_this(env, info, &this_arg);
  if (watch == NULL) return NULL;
  if (watch->polling) uv_ref((uv_handle_t *)&watch->poll);
  return this_arg;
}

static void finalize_watch(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  pidfd_watch *watch = (pidfd_watch *)data;
  watch->js_alive = false;
  maybe_free(watch);
}

static napi_value watch_pidfd_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_TRY(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd = -1;
  if (!get_fd_arg(env, argv, argc, 0, &fd)) return NULL;
  napi_valuetype type = napi_undefined;
  if (argc < 2 || napi_typeof(env, argv[1], &type) != napi_ok || type != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }

  uv_loop_t *loop = NULL;
  NAPI_TRY(env, napi_get_uv_event_loop(env, &loop));

  napi_value handle, close_fn, unref_fn, ref_fn, resource_name;
  NAPI_TRY(env, napi_create_object(env, &handle));
  NAPI_TRY(env, napi_create_function(env, "close", NAPI_AUTO_LENGTH, watch_close_js, NULL, &close_fn));
  NAPI_TRY(env, napi_create_function(env, "unref", NAPI_AUTO_LENGTH, watch_unref_js, NULL, &unref_fn));
  NAPI_TRY(env, napi_create_function(env, "ref", NAPI_AUTO_LENGTH, watch_ref_js, NULL, &ref_fn));
  NAPI_TRY(env, napi_set_named_property(env, handle, "close", close_fn));
  NAPI_TRY(env, napi_set_named_property(env, handle, "unref", unref_fn));
  NAPI_TRY(env, napi_set_named_property(env, handle, "ref", ref_fn));
  NAPI_TRY(env, napi_create_string_utf8(env, "rrts:PidfdWatch", NAPI_AUTO_LENGTH, &resource_name));

  pidfd_watch *watch = (pidfd_watch *)calloc(1, sizeof *watch);
  if (watch == NULL) {
    throw_errno(env, "watchPidfd", ENOMEM);
    return NULL;
  }
  watch->env = env;
  watch->poll.data = watch;

  int rc = uv_poll_init(loop, &watch->poll, fd);
  if (rc != 0) {
    free(watch);
    throw_errno(env, "uv_poll_init", -rc);  // libuv errors are negated errno values on Unix
    return NULL;
  }
  watch->polling = true;
  // From here the poll handle is initialized, so every failure path must uv_close it (release_watch does).
  if (napi_add_async_cleanup_hook(env, on_env_teardown, watch, &watch->teardown) != napi_ok) watch->teardown = NULL;
  watch->js_alive = true;
  if (napi_wrap(env, handle, watch, finalize_watch, NULL, NULL) != napi_ok) {
    watch->js_alive = false;
    release_watch(watch);
    napi_throw_error(env, NULL, "watchPidfd: napi_wrap failed");
    return NULL;
  }
  if (napi_create_reference(env, argv[1], 1, &watch->callback) != napi_ok ||
      napi_async_init(env, handle, resource_name, &watch->context) != napi_ok) {
    release_watch(watch);
    napi_throw_error(env, NULL, "watchPidfd: could not keep the callback");
    return NULL;
  }

  rc = uv_poll_start(&watch->poll, UV_READABLE, on_pidfd_readable);
  if (rc != 0) {
    release_watch(watch);
    throw_errno(env, "uv_poll_start", -rc);
    return NULL;
  }
  return handle;
}

// ---------------------------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------------------------
// sendUnixDatagram(path, buffer): one datagram to a unix SOCK_DGRAM socket (systemd's NOTIFY_SOCKET), which Node
// cannot do. A path starting with '@' names an abstract socket (leading NUL). socket, sendto, close: no state kept.

static napi_value send_unix_datagram_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_TRY(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype type = napi_undefined;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "path must be a string");
    return NULL;
  }
  bool is_buffer = false;
  if (argc < 2 || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok || !is_buffer) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "data must be a Buffer");
    return NULL;
  }

  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  char path[sizeof addr.sun_path + 1];
  size_t path_len = 0;
  NAPI_TRY(env, napi_get_value_string_utf8(env, argv[0], path, sizeof path, &path_len));
  if (path_len == 0 || path_len > sizeof addr.sun_path - (path[0] == '@' ? 0 : 1)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "path must be 1 to 107 bytes long");
    return NULL;
  }
  memcpy(addr.sun_path, path, path_len);
  if (path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + (path[0] == '@' ? 0 : 1));

  void *data = NULL;
  size_t data_len = 0;
  NAPI_TRY(env, napi_get_buffer_info(env, argv[1], &data, &data_len));

  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    throw_errno(env, "socket", errno);
    return NULL;
  }
  ssize_t sent;
  do {
    sent = sendto(fd, data, data_len, MSG_NOSIGNAL, (struct sockaddr *)&addr, addr_len);
  } while (sent < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (sent < 0) {
    char call[160];
    snprintf(call, sizeof call, "sendto(%s)", path);
    throw_errno_call(env, "sendto", call, err);
    return NULL;
  }
  return NULL;
}


// ---------------------------------------------------------------------------------------------------------------
// writeSome(fd, bytes): one write(2) of a Uint8Array on a non-blocking fd, for the hot path's job frames and answers
// without the stream layer's bookkeeping. Returns the bytes written (0 when the fd would block) or -errno; never
// throws for the write itself, so the caller hands whatever is left, and any failure, to the fd's stream.

static napi_value write_some_js(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_TRY(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd = -1;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fd must be a non-negative integer");
    return NULL;
  }
  bool is_typedarray = false;
  napi_typedarray_type kind = napi_int8_array;
  void *data = NULL;
  size_t length = 0;
  if (napi_is_typedarray(env, argv[1], &is_typedarray) != napi_ok || !is_typedarray ||
      napi_get_typedarray_info(env, argv[1], &kind, &length, &data, NULL, NULL) != napi_ok || kind != napi_uint8_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "bytes must be a Uint8Array");
    return NULL;
  }
  ssize_t written = 0;
  if (length > 0) {
    do {
      written = write(fd, data, length);
    } while (written < 0 && errno == EINTR);
    if (written < 0) written = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -(ssize_t)errno;
  }
  napi_value result;
  NAPI_TRY(env, napi_create_int64(env, (int64_t)written, &result));
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// dupCloexec(fd) -> a new fd for the same open socket (or pipe), close-on-exec (fcntl F_DUPFD_CLOEXEC): a socket
// net.Server accepted becomes one rrts creates with `onread` (adopt.ts). Close-on-exec as every fd Node makes, so
// no PHP worker spawned later holds another worker's connection open.

static napi_value dup_cloexec_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_TRY(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int fd = -1;
  if (!get_fd_arg(env, argv, argc, 0, &fd)) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    int err = errno;
    char call[48];
    snprintf(call, sizeof call, "fcntl(fd %d, F_DUPFD_CLOEXEC)", fd);
    throw_errno_call(env, "fcntl", call, err);
    return NULL;
  }
  napi_value result;
  NAPI_TRY(env, napi_create_int32(env, copy, &result));
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// sendFds(socketFd, fds, data): one sendmsg(2) of `data` with an SCM_RIGHTS message carrying `fds`, on a connected
// unix socket: how rrts hands a fork worker the ends of its pipes, with the pid request, over the worker's relay
// connection. The caller still owns (and closes) its copies of the fds.

#define SEND_FDS_MAX 4

static napi_value send_fds_js(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_TRY(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int socket_fd = -1;
  if (!get_fd_arg(env, argv, argc, 0, &socket_fd)) return NULL;
  bool is_array = false;
  uint32_t count = 0;
  if (argc < 2 || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &count) != napi_ok || count == 0 || count > SEND_FDS_MAX) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fds must be an array of 1 to 4 fds");
    return NULL;
  }
  int fds[SEND_FDS_MAX];
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    NAPI_TRY(env, napi_get_element(env, argv[1], i, &element));
    if (!get_fd_arg(env, &element, 1, 0, &fds[i])) return NULL;
  }
  bool is_typedarray = false;
  napi_typedarray_type kind = napi_int8_array;
  void *data = NULL;
  size_t length = 0;
  if (argc < 3 || napi_is_typedarray(env, argv[2], &is_typedarray) != napi_ok || !is_typedarray ||
      napi_get_typedarray_info(env, argv[2], &kind, &length, &data, NULL, NULL) != napi_ok || kind != napi_uint8_array ||
      length == 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "data must be a non-empty Uint8Array");
    return NULL;
  }

  struct iovec iov = {.iov_base = data, .iov_len = length};
  union {
    char buf[CMSG_SPACE(sizeof(int) * SEND_FDS_MAX)];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof control);
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * count);
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * count);
  memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * count);

  ssize_t sent;
  do {
    sent = sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0 || (size_t)sent != length) {
    // a fresh connection's send buffer is empty and takes a short message whole, so EAGAIN or a short write means
    // something is wrong: report it like any error (the fds went with the first byte; the peer gets a cut frame)
    int err = sent < 0 ? errno : EIO;
    char call[96];
    if (sent < 0) snprintf(call, sizeof call, "sendmsg(fd %d, SCM_RIGHTS)", socket_fd);
    else snprintf(call, sizeof call, "sendmsg(fd %d, SCM_RIGHTS) of %zu bytes, sent %zd", socket_fd, length, sent);
    throw_errno_call(env, "sendmsg", call, err);
    return NULL;
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor exports_list[] = {
    {"pidfdOpen", NULL, pidfd_open_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"pidfdSendSignal", NULL, pidfd_send_signal_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"watchPidfd", NULL, watch_pidfd_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"closeFd", NULL, close_fd_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setChildSubreaper", NULL, set_child_subreaper_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"isChildSubreaper", NULL, is_child_subreaper_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"peerCred", NULL, peer_cred_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sendUnixDatagram", NULL, send_unix_datagram_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"writeSome", NULL, write_some_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"dupCloexec", NULL, dup_cloexec_js, NULL, NULL, NULL, napi_enumerable, NULL},
    {"sendFds", NULL, send_fds_js, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof exports_list / sizeof exports_list[0], exports_list) != napi_ok) {
    return NULL;
  }
  return exports;
}
