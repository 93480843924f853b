package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/bca-app/backend/internal/app"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/storage"
	"github.com/bca-app/backend/internal/syncqueue"
)

// provision creates what the deployment needs outside PostgreSQL and Redis, idempotently: the
// bucket named by AWS_S3_BUCKET_NAME, and the sync task queue (FIFO) with its dead-letter queue
// and redrive policy, named by the argument or by the last segment of AWS_TASK_SQS_URL. It uses
// the same AWS_* variables as the processes (AWS_ENDPOINT_URL for a compatible endpoint), and
// prints the queue URL to put into AWS_TASK_SQS_URL.
func provision(ctx context.Context, args []string) error {
	aws := config.Defaults().AWS
	for name, dst := range map[string]*string{
		"AWS_REGION": &aws.Region, "AWS_ACCESS_KEY_ID": &aws.AccessKeyID, "AWS_SECRET_ACCESS_KEY": &aws.SecretAccessKey,
		"AWS_ENDPOINT_URL": &aws.EndpointURL, "AWS_S3_BUCKET_NAME": &aws.S3Bucket, "AWS_TASK_SQS_URL": &aws.TaskSQSURL,
	} {
		if v := os.Getenv(name); v != "" {
			*dst = v
		}
	}
	if v := os.Getenv("AWS_S3_PATH_STYLE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("AWS_S3_PATH_STYLE: %q is not a boolean", v)
		}
		aws.S3PathStyle = b
	}
	queueName := ""
	switch {
	case len(args) == 1:
		queueName = args[0]
	case len(args) > 1:
		return errUsage
	case aws.TaskSQSURL != "":
		u, err := url.Parse(aws.TaskSQSURL)
		if err != nil {
			return fmt.Errorf("AWS_TASK_SQS_URL: %w", err)
		}
		queueName = path.Base(u.Path)
	}
	if queueName == "" && aws.S3Bucket == "" {
		return fmt.Errorf("nothing to provision: set AWS_S3_BUCKET_NAME and AWS_TASK_SQS_URL, or name the queue")
	}
	if aws.S3Bucket != "" {
		store, err := storage.NewS3(ctx, storage.S3Config{
			Bucket: aws.S3Bucket, Region: aws.Region, EndpointURL: aws.EndpointURL, UsePathStyle: aws.S3PathStyle,
			AccessKeyID: aws.AccessKeyID, SecretAccessKey: aws.SecretAccessKey,
		})
		if err != nil {
			return err
		}
		if err := store.EnsureBucket(ctx); err != nil {
			return err
		}
		fmt.Printf("bucket %s: ready\n", aws.S3Bucket)
	}
	if queueName != "" {
		awsCfg, err := app.AWSConfig(ctx, aws)
		if err != nil {
			return err
		}
		client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
			if aws.EndpointURL != "" {
				o.BaseEndpoint = &aws.EndpointURL
			}
		})
		p, err := syncqueue.ProvisionQueue(ctx, client, syncqueue.DefaultQueueSpec(queueName))
		if err != nil {
			return err
		}
		fmt.Printf("dead-letter queue: %s\nAWS_TASK_SQS_URL=%s\n", p.DeadLetterURL, p.QueueURL)
	}
	return nil
}
