package aws

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// ec2API lists the SDK calls the provider makes, with the SDK's signatures.
type ec2API interface {
	RunInstances(ctx context.Context, params *ec2.RunInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, params *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	StartInstances(ctx context.Context, params *ec2.StartInstancesInput, optFns ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error)
	CreateTags(ctx context.Context, params *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	GetConsoleOutput(ctx context.Context, params *ec2.GetConsoleOutputInput, optFns ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error)
}

var _ ec2API = (*ec2.Client)(nil)

// Defaults for Options fields left zero.
const (
	DefaultPageSize         = 1000
	DefaultWaitMinDelay     = 2 * time.Second
	DefaultWaitMaxDelay     = 15 * time.Second
	DefaultMaxAttempts      = 3
	DefaultThrottleAttempts = 10
	DefaultMaxBackoff       = 20 * time.Second
)

// Options configures a Provider. Zero values mean the SDK's or this
// package's defaults.
type Options struct {
	// Region is the AWS region. Empty means the SDK's resolution: AWS_REGION,
	// the profile, then instance metadata.
	Region string
	// Profile is the shared config profile. Empty means AWS_PROFILE or "default".
	Profile string
	// Endpoint overrides the EC2 endpoint URL (for example a test server).
	Endpoint string
	// Credentials overrides the SDK's credential chain when set.
	Credentials aws.CredentialsProvider
	// HTTPClient replaces the SDK's HTTP client when set (proxies, custom
	// transports, recorded responses in benchmarks).
	HTTPClient aws.HTTPClient

	// Subnets maps availability zones to the subnet to launch into. When
	// it is empty instances go to the zone's default subnet; when it is not,
	// a launch into a zone it lacks fails.
	Subnets map[string]string
	// KeyName is the EC2 key pair to launch with, if any.
	KeyName string
	// SecurityGroupIDs are the security groups to launch with, if any.
	SecurityGroupIDs []string

	// PageSize is DescribeInstances' MaxResults (5 to 1000). Zero means 1000.
	PageSize int32
	// WaitMinDelay and WaitMaxDelay bound the delay between polls of
	// WaitRunning. Zero means 2 s and 15 s.
	WaitMinDelay, WaitMaxDelay time.Duration

	// Retry tunes the SDK's retries.
	Retry RetryOptions

	// Logger receives debug records of launches and terminations. Nil
	// means no logging.
	Logger *slog.Logger
}

// RetryOptions tunes how the SDK retries failed calls.
type RetryOptions struct {
	// MaxAttempts bounds the attempts of a call failing with a transient
	// error other than throttling (5xx, timeouts, connection errors). Zero
	// means 3.
	MaxAttempts int
	// ThrottleAttempts bounds the attempts of a call EC2 throttles
	// (RequestLimitExceeded and the like). Zero means 10.
	ThrottleAttempts int
	// MaxBackoff bounds the delay between attempts. Zero means 20 s.
	MaxBackoff time.Duration
	// Backoff, when set, replaces the SDK's exponential jittered backoff
	// (50 ms base, 1 s base for throttles); tests set a zero backoff.
	Backoff retry.BackoffDelayer
	// Mode is aws.RetryModeAdaptive (the default: client-side rate limiting
	// kicks in once EC2 throttles) or aws.RetryModeStandard.
	Mode aws.RetryMode
}

// Provider is an EC2 cloud. It is safe for concurrent use.
type Provider struct {
	api  ec2API
	opts Options
	log  *slog.Logger
	// sdkDecode makes List decode pages with the SDK only (tests compare).
	sdkDecode bool
}

// New loads the AWS configuration and returns a Provider around a new EC2
// client.
func New(ctx context.Context, opts Options) (*Provider, error) {
	var load []func(*config.LoadOptions) error
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(opts.Profile))
	}
	if opts.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(opts.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("loading aws config: %w", err)
	}
	if cfg.Region == "" {
		// On an EC2 instance the region comes from instance metadata
		// (unless AWS_EC2_METADATA_DISABLED says otherwise).
		r, err := imds.NewFromConfig(cfg).GetRegion(ctx, &imds.GetRegionInput{})
		if err != nil {
			return nil, fmt.Errorf("loading aws config: no region in the options, AWS_REGION or the profile, and none from instance metadata: %w", err)
		}
		cfg.Region = r.Region
	}
	retryer, err := newRetryer(opts.Retry)
	if err != nil {
		return nil, err
	}
	client := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.Retryer = retryer
		if opts.HTTPClient != nil {
			o.HTTPClient = opts.HTTPClient
		}
		o.RetryMaxAttempts = 0 // keep AWS_MAX_ATTEMPTS from wrapping our retryer
	})
	return newProvider(client, opts)
}

// newProvider returns a Provider around api; unit tests give it a fake.
func newProvider(api ec2API, opts Options) (*Provider, error) {
	if opts.PageSize == 0 {
		opts.PageSize = DefaultPageSize
	}
	if opts.PageSize < 5 || opts.PageSize > 1000 {
		return nil, fmt.Errorf("aws page size %d out of range 5..1000", opts.PageSize)
	}
	if opts.WaitMinDelay == 0 {
		opts.WaitMinDelay = DefaultWaitMinDelay
	}
	if opts.WaitMaxDelay == 0 {
		opts.WaitMaxDelay = DefaultWaitMaxDelay
	}
	if opts.WaitMinDelay > opts.WaitMaxDelay {
		return nil, fmt.Errorf("aws wait delays: minimum %s above maximum %s", opts.WaitMinDelay, opts.WaitMaxDelay)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{api: api, opts: opts, log: log.With("component", "aws")}, nil
}
