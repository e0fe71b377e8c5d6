package image

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/google"
)

// defaultKeychain is the keychain Open uses unless WithKeychain is given:
// Docker config and credential helpers first, then Google, then ECR.
func defaultKeychain(log *slog.Logger) authn.Keychain {
	return Keychain(nil, log)
}

// Keychain is the keychain Open uses by default, for other users of a
// registry (pushes): Docker config and credential helpers first, then
// Google, then ECR with tokens from ecrClient, or from the default AWS
// configuration when ecrClient is nil. log may be nil.
func Keychain(ecrClient ECRTokenGetter, log *slog.Logger) authn.Keychain {
	k := NewECRKeychain(log)
	if ecrClient != nil {
		k = NewECRKeychainWithClient(ecrClient, log)
	}
	return authn.NewMultiKeychain(authn.DefaultKeychain, google.Keychain, k)
}

// ecrHost matches private ECR registries:
// ACCOUNT.dkr.ecr.REGION.amazonaws.com (and .com.cn, and FIPS hosts).
var ecrHost = regexp.MustCompile(`^(\d{12})\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$`)

// ECRTokenGetter is the one ECR call the ECR keychain makes; *ecr.Client
// implements it.
type ECRTokenGetter interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// ECRKeychain resolves credentials for private ECR registries with
// ecr:GetAuthorizationToken. It answers authn.Anonymous for every other
// host, so it can sit in an authn.NewMultiKeychain after other keychains.
// The AWS configuration is loaded lazily, only when an ECR host is first
// asked for. Tokens are cached per region until shortly before they expire.
type ECRKeychain struct {
	log *slog.Logger
	// newClient returns the ECR client for a region; tests replace it.
	newClient func(ctx context.Context, region string) (ECRTokenGetter, error)

	mu     sync.Mutex
	tokens map[string]ecrToken
}

type ecrToken struct {
	user, pass string
	expires    time.Time
}

// NewECRKeychain returns an ECRKeychain using the AWS SDK's default
// configuration chain (environment, shared config, SSO, IMDS). log may be
// nil.
func NewECRKeychain(log *slog.Logger) *ECRKeychain {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ECRKeychain{
		log: log,
		newClient: func(ctx context.Context, region string) (ECRTokenGetter, error) {
			cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(region))
			if err != nil {
				return nil, fmt.Errorf("loading AWS config: %w", err)
			}
			return ecr.NewFromConfig(cfg), nil
		},
		tokens: map[string]ecrToken{},
	}
}

// NewECRKeychainWithClient returns an ECRKeychain that uses client for
// every region (useful with a custom endpoint).
func NewECRKeychainWithClient(client ECRTokenGetter, log *slog.Logger) *ECRKeychain {
	k := NewECRKeychain(log)
	k.newClient = func(context.Context, string) (ECRTokenGetter, error) { return client, nil }
	return k
}

// Resolve implements authn.Keychain.
func (k *ECRKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), target)
}

// ResolveContext implements authn.ContextKeychain.
func (k *ECRKeychain) ResolveContext(ctx context.Context, target authn.Resource) (authn.Authenticator, error) {
	host := target.RegistryStr()
	m := ecrHost.FindStringSubmatch(host)
	if m == nil {
		return authn.Anonymous, nil
	}
	region := m[3]
	k.mu.Lock()
	defer k.mu.Unlock()
	if t, ok := k.tokens[host]; ok && time.Now().Before(t.expires) {
		return &authn.Basic{Username: t.user, Password: t.pass}, nil
	}
	k.log.Debug("getting ECR authorization token", "registry", host, "region", region)
	client, err := k.newClient(ctx, region)
	if err != nil {
		return nil, fmt.Errorf("ECR credentials for %s: %w", host, err)
	}
	out, err := client.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, fmt.Errorf("ECR credentials for %s: %w", host, err)
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return nil, fmt.Errorf("ECR credentials for %s: no authorization data returned", host)
	}
	d := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(d.AuthorizationToken))
	if err != nil {
		return nil, fmt.Errorf("ECR credentials for %s: decoding token: %w", host, err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return nil, fmt.Errorf("ECR credentials for %s: %w", host, errors.New("token is not user:password"))
	}
	expires := time.Now().Add(time.Hour)
	if d.ExpiresAt != nil {
		expires = d.ExpiresAt.Add(-5 * time.Minute)
	}
	k.tokens[host] = ecrToken{user: user, pass: pass, expires: expires}
	return &authn.Basic{Username: user, Password: pass}, nil
}
