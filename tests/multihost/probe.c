/* probe.c: the MPI program of smoke.sh (tests/multihost).
 *
 *   probe check DIR   every rank prints "rank R of N on HOST token=... unpassed=..." and writes
 *                     its HOST to DIR/rank.R (DIR is the node-local directory); rank 0 checks
 *                     an MPI_Allreduce of the ranks; ranks 1 and 2 exchange point to point, a
 *                     1 MiB message (large enough for the TCP BTL's rendezvous protocol) from 1
 *                     to 2 and a reply from 2 to 1. Exit status 1 if a check fails.
 *   probe hang DIR    every rank writes "PID HOST" to DIR/rank.R once all are running, then
 *                     allreduces in a loop until it is killed, or for at most 100 s.
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* DIR/rank.R, written whole under a temporary name, then renamed: a reader polling for it never
 * sees it half written. */
static void write_rank_file(const char *dir, int rank, const char *text) {
  char path[4096], tmp[4096];
  snprintf(path, sizeof path, "%s/rank.%d", dir, rank);
  snprintf(tmp, sizeof tmp, "%s/.rank.%d.tmp", dir, rank);
  FILE *f = fopen(tmp, "w");
  if (f == NULL || fprintf(f, "%s\n", text) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
    perror(path);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
}

static int check(int rank, int size, const char *name, const char *dir) {
  const char *token = getenv("MH_SMOKE_TOKEN");
  const char *unpassed = getenv("MH_SMOKE_UNPASSED");
  printf("rank %d of %d on %s token=%s unpassed=%s\n", rank, size, name,
         token ? token : "(unset)", unpassed ? unpassed : "(unset)");
  fflush(stdout);
  write_rank_file(dir, rank, name);

  int status = 0, sum = -1;
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) {
    int want = size * (size - 1) / 2;
    printf("allreduce: sum %d, expected %d: %s\n", sum, want, sum == want ? "ok" : "WRONG");
    status |= sum != want;
  }

  enum { BIG = 1 << 20 };
  if (size > 2 && rank == 1) {
    unsigned char *big = malloc(BIG);
    char reply[256] = "";
    for (int i = 0; i < BIG; i++) big[i] = (unsigned char)(i * 7 + 3);
    MPI_Send(big, BIG, MPI_UNSIGNED_CHAR, 2, 1, MPI_COMM_WORLD);
    MPI_Recv(reply, sizeof reply, MPI_CHAR, 2, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    printf("p2p: rank 1 on %s got the reply '%s'\n", name, reply);
    free(big);
  } else if (size > 2 && rank == 2) {
    unsigned char *big = malloc(BIG);
    char reply[256];
    int bad = 0;
    MPI_Recv(big, BIG, MPI_UNSIGNED_CHAR, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    for (int i = 0; i < BIG; i++) bad += big[i] != (unsigned char)(i * 7 + 3);
    printf("p2p: rank 2 on %s got 1 MiB from rank 1: %s\n", name, bad ? "CORRUPT" : "intact");
    status |= bad != 0;
    snprintf(reply, sizeof reply, "rank 2 on %s", name);
    MPI_Send(reply, (int)strlen(reply) + 1, MPI_CHAR, 1, 2, MPI_COMM_WORLD);
    free(big);
  }
  fflush(stdout);
  return status;
}

static void hang(int rank, const char *name, const char *dir) {
  MPI_Barrier(MPI_COMM_WORLD); /* every rank is running */
  char text[512];
  snprintf(text, sizeof text, "%ld %s", (long)getpid(), name);
  write_rank_file(dir, rank, text);
  time_t end = time(NULL) + 100; /* bounded, should the kill never come */
  while (time(NULL) < end) {
    int mine = rank, sum;
    MPI_Allreduce(&mine, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    usleep(50 * 1000);
  }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size, len, status = 0;
  char name[MPI_MAX_PROCESSOR_NAME];
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Get_processor_name(name, &len);
  if (argc == 3 && strcmp(argv[1], "check") == 0) {
    status = check(rank, size, name, argv[2]);
  } else if (argc == 3 && strcmp(argv[1], "hang") == 0) {
    hang(rank, name, argv[2]);
  } else {
    if (rank == 0) fprintf(stderr, "usage: probe check|hang DIR\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Finalize();
  return status;
}
