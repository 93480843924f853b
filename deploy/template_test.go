// Package deploy holds the AWS CloudFormation template of the whole service (bca.yaml) and the
// container build file of the API. This test creates the template as a stack in moto's
// CloudFormation and checks what moto builds from it.
package deploy_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"gopkg.in/yaml.v3"

	"github.com/bca-app/backend/internal/devstack"
	"github.com/bca-app/backend/internal/testenv"
)

// networkTemplate stands in for the VPC an operator already has: the stack takes its ids as
// parameters.
const networkTemplate = `{
  "Resources": {
    "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.42.0.0/16"}},
    "PublicA": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.42.0.0/24", "AvailabilityZone": "us-east-1a"}},
    "PublicB": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.42.1.0/24", "AvailabilityZone": "us-east-1b"}},
    "PrivateA": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.42.2.0/24", "AvailabilityZone": "us-east-1a"}},
    "PrivateB": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.42.3.0/24", "AvailabilityZone": "us-east-1b"}}
  },
  "Outputs": {
    "VpcId": {"Value": {"Ref": "Vpc"}},
    "Public": {"Value": {"Fn::Join": [",", [{"Ref": "PublicA"}, {"Ref": "PublicB"}]]}},
    "Private": {"Value": {"Fn::Join": [",", [{"Ref": "PrivateA"}, {"Ref": "PrivateB"}]]}}
  }
}`

type clients struct {
	cfn    *cloudformation.Client
	sqs    *sqs.Client
	s3     *s3.Client
	lambda *lambda.Client
	iam    *iam.Client
}

func newClients(endpoint string) clients {
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint: aws.String(endpoint),
	}
	return clients{
		cfn:    cloudformation.NewFromConfig(cfg),
		sqs:    sqs.NewFromConfig(cfg),
		s3:     s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }),
		lambda: lambda.NewFromConfig(cfg),
		iam:    iam.NewFromConfig(cfg),
	}
}

func TestTemplateCreatesTheStack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A moto of its own: the stack's resources (functions, clusters, load balancers) would
	// otherwise share the moto that the other packages' tests read whole.
	moto, err := devstack.StartMoto(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = moto.Stop() })
	c := newClients(moto.URL())

	network := createStack(ctx, t, c.cfn, testenv.UniqueName("network"), networkTemplate, nil)

	// The worker's code: moto's Lambda reads the zip from S3 when the function is created.
	codeBucket := testenv.UniqueName("code")
	if _, err := c.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &codeBucket}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &codeBucket, Key: aws.String("worker.zip"), Body: bytes.NewReader(lambdaZip(t)),
	}); err != nil {
		t.Fatal(err)
	}

	tmpl := readTemplate(t)
	name := testenv.UniqueName("bca")
	outputs := createStack(ctx, t, c.cfn, name, tmpl.forMoto(t), map[string]string{
		"ApiImage":         "bca-api:test",
		"WorkerCodeBucket": codeBucket,
		"WorkerCodeKey":    "worker.zip",
		"VpcId":            network["VpcId"],
		"PublicSubnetIds":  network["Public"],
		"PrivateSubnetIds": network["Private"],
		"PublicBaseUrl":    "https://bca.example",
		"MailDomain":       "bca.example",
	})
	resources := stackResources(ctx, t, c.cfn, name)

	t.Run("queue is FIFO with a dead-letter redrive", func(t *testing.T) {
		queue := attributes(ctx, t, c.sqs, outputs["SyncTaskQueueUrl"])
		dlq := attributes(ctx, t, c.sqs, outputs["SyncTaskDeadLetterQueueUrl"])
		if queue["FifoQueue"] != "true" || dlq["FifoQueue"] != "true" {
			t.Errorf("FifoQueue: queue %q, dlq %q; want both true", queue["FifoQueue"], dlq["FifoQueue"])
		}
		if queue["ContentBasedDeduplication"] == "true" {
			t.Error("ContentBasedDeduplication is on; the sender sets deduplication ids")
		}
		var redrive struct {
			DeadLetterTargetArn string `json:"deadLetterTargetArn"`
			MaxReceiveCount     any    `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(queue["RedrivePolicy"]), &redrive); err != nil {
			t.Fatalf("RedrivePolicy %q: %v", queue["RedrivePolicy"], err)
		}
		if redrive.DeadLetterTargetArn != dlq["QueueArn"] {
			t.Errorf("redrive target %q, want the DLQ %q", redrive.DeadLetterTargetArn, dlq["QueueArn"])
		}
		if n, _ := json.Marshal(redrive.MaxReceiveCount); strings.Trim(string(n), `"`) != "5" {
			t.Errorf("maxReceiveCount %s, want 5", n)
		}
	})

	t.Run("bucket exists", func(t *testing.T) {
		if _, err := c.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(outputs["BucketName"])}); err != nil {
			t.Fatalf("bucket %q: %v", outputs["BucketName"], err)
		}
	})

	t.Run("worker function and its event source", func(t *testing.T) {
		fn, err := c.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(outputs["WorkerFunctionArn"])})
		if err != nil {
			t.Fatal(err)
		}
		cfg := fn.Configuration
		if string(cfg.Runtime) != "provided.al2023" || aws.ToString(cfg.Handler) != "bootstrap" {
			t.Errorf("runtime %q handler %q, want provided.al2023 / bootstrap", cfg.Runtime, aws.ToString(cfg.Handler))
		}
		if got := aws.ToString(cfg.Role); got != roleArn(ctx, t, c.iam, resources["WorkerRole"]) {
			t.Errorf("function role %q is not the stack's WorkerRole", got)
		}
		env := cfg.Environment.Variables
		for _, k := range []string{"DATABASE_URL", "REDIS_URL", "AWS_S3_BUCKET_NAME", "AWS_TASK_SQS_URL", "SECRET_KEY"} {
			if env[k] == "" {
				t.Errorf("worker environment lacks %s", k)
			}
		}
		if env["AWS_TASK_SQS_URL"] != outputs["SyncTaskQueueUrl"] {
			t.Errorf("worker AWS_TASK_SQS_URL %q, want %q", env["AWS_TASK_SQS_URL"], outputs["SyncTaskQueueUrl"])
		}

		m, err := c.lambda.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: aws.String(resources["WorkerEventSource"])})
		if err != nil {
			t.Fatalf("event source mapping: %v", err)
		}
		if aws.ToString(m.FunctionArn) != aws.ToString(cfg.FunctionArn) {
			t.Errorf("event source feeds %q, want the worker %q", aws.ToString(m.FunctionArn), aws.ToString(cfg.FunctionArn))
		}
		queueArn := attributes(ctx, t, c.sqs, outputs["SyncTaskQueueUrl"])["QueueArn"]
		if aws.ToString(m.EventSourceArn) != queueArn {
			t.Errorf("event source %q, want the queue %q", aws.ToString(m.EventSourceArn), queueArn)
		}
		if aws.ToInt32(m.BatchSize) != 10 {
			t.Errorf("batch size %d, want 10", aws.ToInt32(m.BatchSize))
		}
		if !slices.Contains(m.FunctionResponseTypes, lambdatypes.FunctionResponseTypeReportBatchItemFailures) {
			t.Errorf("function response types %v lack ReportBatchItemFailures", m.FunctionResponseTypes)
		}
	})

	// On Lambda no loop sweeps between invocations: a schedule invokes the function, which
	// then sweeps sync state and unused uploads once (docs/sync.md §4.6).
	t.Run("a schedule invokes the worker's sweeps", func(t *testing.T) {
		fnArn := outputs["WorkerFunctionArn"]
		rule := eventsCall(ctx, t, moto.URL(), "DescribeRule", map[string]any{"Name": resources["WorkerSweepSchedule"]})
		ruleArn, _ := rule["Arn"].(string)
		if rule["ScheduleExpression"] != "rate(1 minute)" || rule["State"] != "ENABLED" || ruleArn == "" {
			t.Errorf("sweep rule: schedule %v state %v arn %q; want rate(1 minute), ENABLED", rule["ScheduleExpression"], rule["State"], ruleArn)
		}
		targets := eventsCall(ctx, t, moto.URL(), "ListTargetsByRule", map[string]any{"Rule": resources["WorkerSweepSchedule"]})
		list, _ := targets["Targets"].([]any)
		invokes := false
		for _, tg := range list {
			if m, _ := tg.(map[string]any); m["Arn"] == fnArn {
				invokes = true
			}
		}
		if !invokes {
			t.Errorf("the sweep rule's targets %v do not include the worker %s", list, fnArn)
		}
		pol, err := c.lambda.GetPolicy(ctx, &lambda.GetPolicyInput{FunctionName: aws.String(fnArn)})
		if err != nil {
			t.Fatalf("the worker's resource policy: %v", err)
		}
		var doc struct {
			Statement []struct {
				Effect    string
				Action    json.RawMessage
				Principal json.RawMessage
				Condition map[string]map[string]string
			}
		}
		if err := json.Unmarshal([]byte(aws.ToString(pol.Policy)), &doc); err != nil {
			t.Fatalf("policy %s: %v", aws.ToString(pol.Policy), err)
		}
		allowed := false
		for _, st := range doc.Statement {
			if st.Effect == "Allow" && slices.Contains(stringOrList(st.Action), "lambda:InvokeFunction") &&
				strings.Contains(string(st.Principal), "events.amazonaws.com") && st.Condition["ArnLike"]["AWS:SourceArn"] == ruleArn {
				allowed = true
			}
		}
		if !allowed {
			t.Errorf("the worker's policy does not let the sweep rule %s invoke it:\n%s", ruleArn, aws.ToString(pol.Policy))
		}
	})

	t.Run("roles are least privilege", func(t *testing.T) {
		queueArn := attributes(ctx, t, c.sqs, outputs["SyncTaskQueueUrl"])["QueueArn"]
		worker := inlineStatements(ctx, t, c.iam, resources["WorkerRole"])
		api := inlineStatements(ctx, t, c.iam, resources["ApiTaskRole"])
		for role, stmts := range map[string][]statement{"WorkerRole": worker, "ApiTaskRole": api} {
			if len(stmts) == 0 {
				t.Fatalf("%s has no inline policy statements", role)
			}
			for _, s := range stmts {
				for _, a := range s.Actions {
					if a == "*" || strings.HasSuffix(a, ":*") {
						t.Errorf("%s allows wildcard action %q", role, a)
					}
				}
				for _, r := range s.Resources {
					if r == "*" {
						t.Errorf("%s allows %v on every resource", role, s.Actions)
					}
				}
			}
		}
		if !allows(worker, "sqs:ChangeMessageVisibility", queueArn) || !allows(worker, "sqs:DeleteMessage", queueArn) {
			t.Error("the worker cannot extend visibility of or delete its queue's messages")
		}
		// The scheduled sweep re-sends the tasks of lagging users (docs/sync.md §4.4).
		if !allows(worker, "sqs:SendMessage", queueArn) {
			t.Error("the worker cannot re-send lagging users' tasks")
		}
		if allows(worker, "ses:SendEmail", "") {
			t.Error("the worker may send mail; it does not need to")
		}
		if !allows(api, "sqs:SendMessage", queueArn) {
			t.Error("the API cannot send sync tasks")
		}
		if allows(api, "sqs:ReceiveMessage", queueArn) || allows(api, "sqs:DeleteMessage", queueArn) {
			t.Error("the API may consume sync tasks; only the worker does")
		}
	})

	t.Run("every resource moto can build was built", func(t *testing.T) {
		var unchecked []string
		for id, typ := range tmpl.types() {
			switch {
			case motoCannotBuild[typ]:
				unchecked = append(unchecked, id+" ("+typ+")")
			default:
				_, built := resources[id]
				if _, conditional := tmpl.Resources[id]["Condition"]; !built && !conditional {
					t.Errorf("%s (%s) was not created", id, typ)
				}
			}
		}
		slices.Sort(unchecked)
		t.Logf("not checked, moto's CloudFormation cannot build them: %s", strings.Join(unchecked, ", "))
	})
}

// motoCannotBuild lists the resource types moto's CloudFormation skips. The stack still
// creates; attributes of such resources are replaced by placeholders before the template goes to
// moto (see forMoto), and the test names them in its log.
var motoCannotBuild = map[string]bool{
	"AWS::SecretsManager::Secret":        true,
	"AWS::ElastiCache::SubnetGroup":      true,
	"AWS::ElastiCache::ReplicationGroup": true,
	"AWS::SES::EmailIdentity":            true,
}

type template struct {
	raw       map[string]any
	Resources map[string]map[string]any `yaml:"Resources"`
}

func readTemplate(t *testing.T) template {
	t.Helper()
	body, err := os.ReadFile("bca.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl template
	if err := yaml.Unmarshal(body, &tmpl.raw); err != nil {
		t.Fatalf("bca.yaml: %v", err)
	}
	if err := yaml.Unmarshal(body, &tmpl); err != nil {
		t.Fatalf("bca.yaml: %v", err)
	}
	return tmpl
}

// types maps every logical id of the template to its resource type.
func (tm template) types() map[string]string {
	m := map[string]string{}
	for id, r := range tm.Resources {
		m[id], _ = r["Type"].(string)
	}
	return m
}

// forMoto is the template as JSON with every Fn::GetAtt of a resource moto cannot build replaced
// by a placeholder string (moto refuses a GetAtt of a resource it skipped).
func (tm template) forMoto(t *testing.T) string {
	t.Helper()
	types := tm.types()
	var walk func(any) any
	walk = func(n any) any {
		switch n := n.(type) {
		case map[string]any:
			if ref, ok := n["Fn::GetAtt"].([]any); ok && len(n) == 1 && len(ref) == 2 {
				if id, _ := ref[0].(string); motoCannotBuild[types[id]] {
					return fmt.Sprintf("unchecked-%s-%v", id, ref[1])
				}
			}
			out := make(map[string]any, len(n))
			for k, v := range n {
				out[k] = walk(v)
			}
			return out
		case []any:
			out := make([]any, len(n))
			for i, v := range n {
				out[i] = walk(v)
			}
			return out
		default:
			return n
		}
	}
	body, err := json.Marshal(walk(tm.raw))
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

func createStack(ctx context.Context, t *testing.T, cfn *cloudformation.Client, name, body string, params map[string]string) map[string]string {
	t.Helper()
	in := &cloudformation.CreateStackInput{
		StackName:    aws.String(name),
		TemplateBody: aws.String(body),
		Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam, cfntypes.CapabilityCapabilityNamedIam},
	}
	for k, v := range params {
		in.Parameters = append(in.Parameters, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
	}
	if _, err := cfn.CreateStack(ctx, in); err != nil {
		t.Fatalf("create stack %s: %v", name, err)
	}
	var outputs map[string]string
	testenv.Eventually(t, time.Minute, func() bool {
		out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			t.Fatalf("describe stack %s: %v", name, err)
		}
		s := out.Stacks[0]
		switch s.StackStatus {
		case cfntypes.StackStatusCreateComplete:
			outputs = map[string]string{}
			for _, o := range s.Outputs {
				outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
			}
			return true
		case cfntypes.StackStatusCreateInProgress:
			return false
		default:
			t.Fatalf("stack %s: %s (%s)", name, s.StackStatus, aws.ToString(s.StackStatusReason))
		}
		return false
	}, "stack %s created", name)
	return outputs
}

// stackResources maps logical ids to physical ids, for the resources moto built (some, such as
// DB subnet groups, without a physical id).
func stackResources(ctx context.Context, t *testing.T, cfn *cloudformation.Client, name string) map[string]string {
	t.Helper()
	out, err := cfn.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range out.StackResources {
		m[aws.ToString(r.LogicalResourceId)] = aws.ToString(r.PhysicalResourceId)
	}
	return m
}

func attributes(ctx context.Context, t *testing.T, c *sqs.Client, queueURL string) map[string]string {
	t.Helper()
	out, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(queueURL), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("queue %s: %v", queueURL, err)
	}
	return out.Attributes
}

func roleArn(ctx context.Context, t *testing.T, c *iam.Client, roleName string) string {
	t.Helper()
	out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(roleName)})
	if err != nil {
		t.Fatalf("role %s: %v", roleName, err)
	}
	return aws.ToString(out.Role.Arn)
}

type statement struct {
	Effect    string
	Actions   []string
	Resources []string
}

// inlineStatements reads every inline policy of a role (moto names roles by their physical id).
func inlineStatements(ctx context.Context, t *testing.T, c *iam.Client, roleName string) []statement {
	t.Helper()
	names, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: aws.String(roleName)})
	if err != nil {
		t.Fatalf("role %s: %v", roleName, err)
	}
	var stmts []statement
	for _, n := range names.PolicyNames {
		p, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(roleName), PolicyName: aws.String(n)})
		if err != nil {
			t.Fatal(err)
		}
		doc, err := url.QueryUnescape(aws.ToString(p.PolicyDocument))
		if err != nil {
			doc = aws.ToString(p.PolicyDocument)
		}
		// moto returns policies that CloudFormation created as a Python literal: single quotes.
		if strings.HasPrefix(doc, "{'") {
			doc = strings.ReplaceAll(doc, "'", `"`)
		}
		var parsed struct {
			Statement []struct {
				Effect   string
				Action   json.RawMessage
				Resource json.RawMessage
			}
		}
		if err := json.Unmarshal([]byte(doc), &parsed); err != nil {
			t.Fatalf("policy %s of %s: %v\n%s", n, roleName, err, doc)
		}
		for _, s := range parsed.Statement {
			stmts = append(stmts, statement{Effect: s.Effect, Actions: stringOrList(s.Action), Resources: stringOrList(s.Resource)})
		}
	}
	return stmts
}

func stringOrList(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(raw, &many)
	return many
}

// allows reports whether an Allow statement grants action on resource ("" = on anything).
func allows(stmts []statement, action, resource string) bool {
	for _, s := range stmts {
		if s.Effect == "Allow" && slices.Contains(s.Actions, action) && (resource == "" || slices.Contains(s.Resources, resource)) {
			return true
		}
	}
	return false
}

// eventsCall calls an EventBridge action of moto (JSON protocol; the module has no EventBridge
// client, and moto checks no signature) and returns the decoded answer.
func eventsCall(ctx context.Context, t *testing.T, endpoint, action string, in any) map[string]any {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AWSEvents."+action)
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/events/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("events %s: %v", action, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events %s: %d %s", action, resp.StatusCode, raw)
	}
	out := map[string]any{}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("events %s: %v\n%s", action, err, raw)
	}
	return out
}

// lambdaZip is a stand-in deployment package: moto stores it and never runs it.
func lambdaZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, err := w.Create("bootstrap")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("#!/bin/false\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
