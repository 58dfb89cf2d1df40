/*
 * qemu-machine native helper: what Node cannot do on a unix socket.
 *
 * Two functions, no state, no threads:
 *   peerCredentials(socketFd: number) => [pid, uid, gid] | number
 * the credentials of the process that connected (SO_PEERCRED), or -errno;
 * used to check that a connection to a monitor's listener comes from QEMU.
 *
 *   sendWithFds(socketFd: number, data: Uint8Array, fds: number[]) => number
 * returns the number of bytes sent (>= 1: the kernel delivers the fds with
 * the first byte), or -errno when sendmsg fails. It never throws for an OS
 * error; only for wrong argument types, which the TypeScript caller rules out.
 *
 * The socket is non-blocking (libuv owns it), so -EAGAIN is possible; the
 * caller retries. MSG_NOSIGNAL: a closed peer gives -EPIPE, not SIGPIPE.
 */
#define _GNU_SOURCE /* struct ucred */
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#define MAX_FDS 16 /* QEMU's own limit per message is 16 (TCP_MAX_FDS). */

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

/* Reads exactly `count` arguments, the first a socket descriptor; false (with a TypeError thrown) otherwise. */
static bool socket_args(napi_env env, napi_callback_info info, size_t count, napi_value *argv, int32_t *sock,
                        const char *usage) {
  size_t argc = count;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != count) {
    throw_type(env, usage);
    return false;
  }
  if (napi_get_value_int32(env, argv[0], sock) != napi_ok) {
    throw_type(env, "socketFd must be a number");
    return false;
  }
  return true;
}

static napi_value send_with_fds(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t sock;
  if (!socket_args(env, info, 3, argv, &sock, "sendWithFds(socketFd, data, fds)")) return NULL;

  bool is_typedarray = false;
  napi_is_typedarray(env, argv[1], &is_typedarray);
  if (!is_typedarray) return throw_type(env, "data must be a Uint8Array");
  napi_typedarray_type kind;
  size_t length;
  void *bytes;
  napi_value arraybuffer;
  size_t offset;
  if (napi_get_typedarray_info(env, argv[1], &kind, &length, &bytes, &arraybuffer, &offset) != napi_ok ||
      kind != napi_uint8_array)
    return throw_type(env, "data must be a Uint8Array");
  if (length == 0) return throw_type(env, "data must not be empty");

  bool is_array = false;
  napi_is_array(env, argv[2], &is_array);
  if (!is_array) return throw_type(env, "fds must be an array");
  uint32_t nfds;
  napi_get_array_length(env, argv[2], &nfds);
  if (nfds == 0 || nfds > MAX_FDS) return throw_type(env, "fds must hold 1 to 16 descriptors");

  int fds[MAX_FDS];
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value element;
    napi_get_element(env, argv[2], i, &element);
    if (napi_get_value_int32(env, element, &fds[i]) != napi_ok)
      return throw_type(env, "fds must be numbers");
  }

  struct iovec iov = { .iov_base = bytes, .iov_len = length };
  union {
    char buffer[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr msg = { 0 };
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buffer;
  msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
  struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
  memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);

  ssize_t sent;
  do {
    sent = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);

  napi_value result;
  napi_create_int64(env, sent < 0 ? -(int64_t)errno : (int64_t)sent, &result);
  return result;
}

static napi_value peer_credentials(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t sock;
  if (!socket_args(env, info, 1, argv, &sock, "peerCredentials(socketFd)")) return NULL;

  struct ucred cred;
  socklen_t size = sizeof(cred);
  napi_value result;
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0) {
    napi_create_int64(env, -(int64_t)errno, &result);
    return result;
  }
  napi_create_array_with_length(env, 3, &result);
  napi_value value;
  napi_create_int64(env, cred.pid, &value);
  napi_set_element(env, result, 0, value);
  napi_create_int64(env, cred.uid, &value);
  napi_set_element(env, result, 1, value);
  napi_create_int64(env, cred.gid, &value);
  napi_set_element(env, result, 2, value);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "sendWithFds", NAPI_AUTO_LENGTH, send_with_fds, NULL, &fn);
  napi_set_named_property(env, exports, "sendWithFds", fn);
  napi_create_function(env, "peerCredentials", NAPI_AUTO_LENGTH, peer_credentials, NULL, &fn);
  napi_set_named_property(env, exports, "peerCredentials", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
