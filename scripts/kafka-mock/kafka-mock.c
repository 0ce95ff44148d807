/*
 * A Kafka peer for tests: librdkafka's mock cluster, which speaks the real
 * Kafka protocol on localhost ports. Prints "BOOTSTRAP <servers>" once ready,
 * then reads commands on stdin, answering "ok" or "error <why>" to each:
 *   topic <name> <partitions>        create a topic
 *   down <broker-id> | up <broker-id>  take a broker down / bring it back
 *   request-errors <api-key> <err> <count>  fail the next <count> requests of an API
 *   topic-error <name> <err>         make a topic report an error (0 clears)
 * Exits when stdin closes (or on SIGTERM/SIGINT).
 * Usage: kafka-mock [--brokers N] [--topic name:partitions]...
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *name, int partitions) {
  rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, name, partitions, 1);
  return err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS ? 0 : -1;
}

int main(int argc, char **argv) {
  int brokers = 1;
  char err[256];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    fprintf(stderr, "kafka-mock: rd_kafka_new: %s\n", err);
    return 1;
  }
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--brokers") && i + 1 < argc) brokers = atoi(argv[++i]);
  rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers < 1 ? 1 : brokers);
  if (!mc) {
    fprintf(stderr, "kafka-mock: could not create the mock cluster\n");
    return 1;
  }
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--topic") || i + 1 >= argc) continue;
    char name[256];
    int parts = 1;
    if (sscanf(argv[++i], "%255[^:]:%d", name, &parts) < 1 || create_topic(mc, name, parts)) {
      fprintf(stderr, "kafka-mock: bad --topic %s\n", argv[i]);
      return 2;
    }
  }
  printf("BOOTSTRAP %s\n", rd_kafka_mock_cluster_bootstraps(mc));
  fflush(stdout);

  char line[512];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[64] = {0}, name[256] = {0};
    int a = 0, b = 0, c = 0, rc = -1;
    if (sscanf(line, "%63s", cmd) != 1) continue;
    if (!strcmp(cmd, "topic") && sscanf(line, "%*s %255s %d", name, &a) == 2) {
      rc = create_topic(mc, name, a);
    } else if (!strcmp(cmd, "down") && sscanf(line, "%*s %d", &a) == 1) {
      rc = rd_kafka_mock_broker_set_down(mc, a) ? -1 : 0;
    } else if (!strcmp(cmd, "up") && sscanf(line, "%*s %d", &a) == 1) {
      rc = rd_kafka_mock_broker_set_up(mc, a) ? -1 : 0;
    } else if (!strcmp(cmd, "request-errors") && sscanf(line, "%*s %d %d %d", &a, &b, &c) == 3 && c > 0) {
      rd_kafka_resp_err_t *errs = calloc((size_t)c, sizeof *errs);
      for (int i = 0; i < c; i++) errs[i] = (rd_kafka_resp_err_t)b;
      rd_kafka_mock_push_request_errors_array(mc, (int16_t)a, (size_t)c, errs);
      free(errs);
      rc = 0;
    } else if (!strcmp(cmd, "topic-error") && sscanf(line, "%*s %255s %d", name, &a) == 2) {
      rd_kafka_mock_topic_set_error(mc, name, (rd_kafka_resp_err_t)a);
      rc = 0;
    }
    printf(rc == 0 ? "ok\n" : "error %s", rc == 0 ? "" : line);
    fflush(stdout);
  }
  rd_kafka_mock_cluster_destroy(mc);
  rd_kafka_destroy(rk);
  return 0;
}
