#define _GNU_SOURCE
/* The test image's server: POST /init and POST /invoke on port 8000 (fgs's image tests). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static char args[1024];

static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

static void slurp(const char *p, char *out, size_t n) {
  out[0] = 0;
  FILE *f = fopen(p, "r");
  if (!f) return;
  size_t r = fread(out, 1, n - 1, f);
  out[r] = 0;
  fclose(f);
  for (char *c = out; *c; c++) if (*c == '\n' || *c == '"') *c = 0;
}

/* One write per response: a head and a body in two writes meet Nagle and delayed ACKs. */
static void reply(int c, int status, const char *body) {
  char out[8192];
  int n = snprintf(out, sizeof out, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", status, strlen(body), body);
  write(c, out, n);
}

static void serve(int c) {
  static char buf[1 << 20];
  size_t have = 0;
  buf[0] = 0;
  for (;;) {
    char *end = NULL;
    while (!(end = strstr(buf, "\r\n\r\n"))) {
      ssize_t r = read(c, buf + have, sizeof buf - 1 - have);
      if (r <= 0) return;
      have += r;
      buf[have] = 0;
    }
    size_t head = end + 4 - buf, len = 0;
    char *cl = strcasestr(buf, "content-length:");
    if (cl) len = strtoul(cl + 15, NULL, 10);
    while (have < head + len) {
      ssize_t r = read(c, buf + have, sizeof buf - 1 - have);
      if (r <= 0) return;
      have += r;
      buf[have] = 0;
    }
    char rid[128] = "";
    char *h = strcasestr(buf, "x-cff-request-id:");
    if (h) sscanf(h + 17, " %127[^\r\n]", rid);
    char *body = buf + head;
    char out[4096];
    if (!strncmp(buf, "POST /init ", 11)) {
      if (getenv("FAIL_INIT")) { reply(c, 500, "{\"error\":\"init refused\"}"); }
      else { FILE *f = fopen("/tmp/inited", "w"); if (f) fclose(f); reply(c, 200, "{}"); }
    } else if (!strncmp(buf, "POST /invoke ", 13)) {
      if (strstr(body, "\"fail\"")) { reply(c, 500, "{\"error\":\"asked to fail\"}"); }
      else if (strstr(body, "\"alloc\"")) {
        for (;;) { char *p = malloc(1 << 20); if (!p) break; memset(p, 1, 1 << 20); }
        reply(c, 200, "{}");
      } else {
        char version[64], cwd[256];
        slurp("/etc/version", version, sizeof version);
        if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
        const char *foo = getenv("FOO");
        int wrote = 0;
        FILE *w = fopen("/scratch/written", "w");
        if (w) { wrote = fputs("x", w) >= 0; fclose(w); }
        snprintf(out, sizeof out,
          "{\"uid\":%d,\"gid\":%d,\"inited\":%s,\"version\":\"%s\",\"gone\":%s,\"old\":%s,\"new\":%s,"
          "\"foo\":\"%s\",\"args\":\"%s\",\"request_id\":\"%s\",\"cwd\":\"%s\",\"root_writable\":%s,\"func\":\"%s\"}",
          getuid(), getgid(), exists("/tmp/inited") ? "true" : "false", version,
          exists("/etc/gone") ? "true" : "false", exists("/data/old") ? "true" : "false",
          exists("/data/new") ? "true" : "false", foo ? foo : "", args, rid, cwd,
          wrote ? "true" : "false", getenv("RUNTIME_FUNC_NAME") ? getenv("RUNTIME_FUNC_NAME") : "");
        reply(c, 200, out);
      }
    } else {
      /* An HTTP function: any other request, echoed. */
      char path[512] = "";
      sscanf(buf, "%*s %511s", path);
      snprintf(out, sizeof out, "{\"http_path\":\"%s\",\"uid\":%d}", path, getuid());
      reply(c, 200, out);
    }
    have -= head + len;
    memmove(buf, buf + head + len, have);
    buf[have] = 0;
  }
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (i > 1) strncat(args, " ", sizeof args - strlen(args) - 1);
    strncat(args, argv[i], sizeof args - strlen(args) - 1);
  }
  if (argc > 1 && !strcmp(argv[1], "--never-listen")) {
    printf("srv: told never to listen\n");
    fflush(stdout);
    for (;;) pause();
  }
  signal(SIGCHLD, SIG_IGN);
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8000)};
  if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 64)) { perror("srv: bind"); return 1; }
  printf("srv: listening on 8000 as uid %d\n", getuid());
  fflush(stdout);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    if (fork() == 0) { close(s); serve(c); _exit(0); }
    close(c);
  }
}
