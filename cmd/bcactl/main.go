// Command bcactl holds the operator and developer verbs: apply migrations, provision the
// bucket and queues, grant the admin role, and run the whole service locally with its own
// PostgreSQL and Redis.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  bcactl migrate                  apply pending migrations to DATABASE_URL (the first step of a rollout)
  bcactl provision [QUEUE.fifo]   create the S3 bucket, the FIFO sync queue and its dead-letter queue
                                  (idempotent; AWS_S3_BUCKET_NAME, AWS_TASK_SQS_URL, AWS_ENDPOINT_URL…)
  bcactl admin grant LOGIN_ID     give the admin role to an account
  bcactl admin revoke LOGIN_ID    take the admin role away
  bcactl lock user|profile|card ID REASON...    lock a row (audited; DATABASE_URL, REDIS_URL)
  bcactl unlock user|profile|card ID REASON...  unlock it
  bcactl revoke-sessions USER_ID REASON...      end every session of a user
  bcactl rebuild USER_ID REASON...              owe a user a fresh sync file
  bcactl dist [DIR]               build static binaries and the worker's Lambda zips into DIR (./dist)
  bcactl dev                      run API + worker with private PostgreSQL and Redis under ./.data
  bcactl with-services -- CMD...  run CMD with throw-away PostgreSQL, Redis and moto (BCA_TEST_*)
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bcactl:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("unknown command (bcactl help lists the commands)")

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "migrate":
		return migrate(ctx)
	case "admin":
		if len(args) != 3 || (args[1] != "grant" && args[1] != "revoke") {
			return errUsage
		}
		return setAdmin(ctx, args[2], args[1] == "grant")
	case "provision":
		return provision(ctx, args[1:])
	case "lock", "unlock", "revoke-sessions", "rebuild":
		return moderate(ctx, args[0], args[1:])
	case "dist":
		return dist(ctx, args[1:])
	case "dev":
		return dev(ctx)
	case "with-services":
		if len(args) > 1 && args[1] == "--" {
			args = args[1:]
		}
		return withServices(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	return errUsage
}
