package uploads

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/s3store"
)

// S3Config selects tusd's s3store instead of the file store: set Bucket.
type S3Config struct {
	// Bucket holds the uploads; it must exist.
	Bucket string
	// Prefix is put in front of every key Edge writes ("uploads/"), so a
	// bucket can hold other things too. Everything under a non-empty
	// prefix is taken to be Edge's (see ownName).
	Prefix string
	// Endpoint is the URL of an S3-compatible service; empty means AWS.
	Endpoint string
	// Region; default "us-east-1".
	Region string
	// PathStyle addresses the bucket in the path rather than the host
	// name, as most S3-compatible services want.
	PathStyle bool
	// AccessKey and SecretKey are static credentials; empty means the AWS
	// SDK's default chain (environment, shared files, instance role).
	AccessKey, SecretKey string
	// PartSize is the preferred size of a multipart part in bytes; default
	// tusd's 50 MiB. Parts are buffered in Config.Dir before they are sent.
	PartSize int64
}

// s3Backing keeps uploads in a bucket with tusd's s3store. Keys, under
// Prefix, with <oid> the hook's id (baseID):
//
//	<oid>                  data, once finished (tusd's FinishUpload; ConcatUploads calls it)
//	<oid>.info, <oid>.part info and the last part while shorter than S3's minimum (tusd)
//	<oid>.sha256           saved SHA-256 state and the offset it covers
//	<oid>.done             the completion was announced (events.go)
//	text/<oid>.txt         text a processor made
//	quarantine/<oid>{,.info} data and info of a checksum mismatch
//
// Config.Dir holds the parts tusd buffers before sending them, and the
// local copies processors read.
type s3Backing struct {
	client *s3.Client
	bucket string
	prefix string
	store  s3store.S3Store
	tmp    string
}

func newS3Backing(ctx context.Context, cfg S3Config, tmp string) (*s3Backing, error) {
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(region)}
	if cfg.AccessKey != "" || cfg.SecretKey != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("uploads: s3: %w", err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		// The SDK's default adds CRC checksums to every request, which
		// many S3-compatible services refuse; tusd needs none.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	prefix := cfg.Prefix
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	store := s3store.New(cfg.Bucket, client)
	store.ObjectPrefix = prefix
	store.TemporaryDirectory = tmp
	if cfg.PartSize > 0 {
		store.PreferredPartSize = max(cfg.PartSize, store.MinPartSize)
	}
	b := &s3Backing{client: client, bucket: cfg.Bucket, prefix: prefix, store: store, tmp: tmp}
	// Fail at start, not on the first upload, when the bucket is wrong.
	if _, err := client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(cfg.Bucket)}); err != nil {
		return nil, fmt.Errorf("uploads: s3 bucket %q: %w", cfg.Bucket, err)
	}
	return b, nil
}

func (b *s3Backing) tus() tusStore { return b.store }

func (b *s3Backing) savesWithinChunk() bool { return false }

// validID: the hook's 32 hex digits, "+", and the multipart upload's id as
// the service made it. That part is opaque; only characters that cannot
// change a URL path or a key are allowed in it.
func (b *s3Backing) validID(id string) bool {
	oid, mp, ok := strings.Cut(id, "+")
	if !ok || !hexID(oid) || mp == "" || len(mp) > 1024 {
		return false
	}
	for i := 0; i < len(mp); i++ {
		c := mp[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && !strings.ContainsRune("._~=-", rune(c)) {
			return false
		}
	}
	return true
}

func (b *s3Backing) key(name string) *string { return aws.String(b.prefix + name) }

func (b *s3Backing) sideKey(oid string, k side) *string {
	switch k {
	case sideText:
		return b.key(textDir + "/" + oid + ".txt")
	case sideDone:
		return b.key(oid + ".done")
	}
	return b.key(oid + ".sha256")
}

// getInfo reads the .info object of base id oid, with its modification time.
func (b *s3Backing) getInfo(ctx context.Context, oid string) (handler.FileInfo, time.Time, error) {
	var info handler.FileInfo
	res, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: b.key(oid + ".info")})
	if notFound(err) {
		return info, time.Time{}, ErrNotFound
	}
	if err != nil {
		return info, time.Time{}, fmt.Errorf("uploads: s3: %w", err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(&info); err != nil {
		return info, time.Time{}, fmt.Errorf("uploads: s3: %s.info: %w", oid, err)
	}
	return info, aws.ToTime(res.LastModified), nil
}

// readInfo also checks the multipart half of id: an id with the right
// object and a made-up multipart id would otherwise pass for the upload.
func (b *s3Backing) readInfo(ctx context.Context, id string) (handler.FileInfo, error) {
	if !b.validID(id) {
		return handler.FileInfo{}, ErrNotFound
	}
	info, _, err := b.getInfo(ctx, baseID(id))
	if err == nil && info.ID != id {
		return handler.FileInfo{}, ErrNotFound
	}
	return info, err
}

// load asks tusd's store for the offset (parts and the short last part),
// and takes the last activity from the latest of the objects a write
// changes: the .info at creation, the hash state after each chunk, the
// short part, the parts, and the data at completion.
func (b *s3Backing) load(ctx context.Context, id string) (handler.FileInfo, time.Time, error) {
	oid := baseID(id)
	stored, modified, err := b.getInfo(ctx, oid)
	if err != nil {
		return stored, modified, err
	}
	up, err := b.store.GetUpload(ctx, id)
	if err != nil {
		return stored, modified, err
	}
	info, err := up.GetInfo(ctx)
	if err != nil {
		return stored, modified, err
	}
	later := func(t *time.Time) {
		if t != nil && t.After(modified) {
			modified = *t
		}
	}
	for _, key := range []*string{b.sideKey(oid, sideHash), b.key(oid + ".part"), b.key(oid)} {
		if res, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: key}); err == nil {
			later(res.LastModified)
		}
	}
	if !finished(info) {
		_, mp, _ := strings.Cut(id, "+")
		pages := s3.NewListPartsPaginator(b.client, &s3.ListPartsInput{Bucket: &b.bucket, Key: b.key(oid), UploadId: &mp})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				break
			}
			for _, p := range page.Parts {
				later(p.LastModified)
			}
		}
	}
	return info, modified, nil
}

// scan lists the keys at the prefix's level once, which names both the
// .info objects and the .done markers, so announced uploads cost nothing.
func (b *s3Backing) scan(ctx context.Context, fn scanFunc) error {
	var oids []string
	announced := map[string]bool{}
	pages := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{
		Bucket: &b.bucket, Prefix: aws.String(b.prefix), Delimiter: aws.String("/"),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("uploads: s3: %w", err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), b.prefix)
			if oid, ok := strings.CutSuffix(name, ".info"); ok && hexID(oid) {
				oids = append(oids, oid)
			} else if oid, ok := strings.CutSuffix(name, ".done"); ok {
				announced[oid] = true
			}
		}
	}
	for _, oid := range oids {
		if announced[oid] {
			continue
		}
		stored, _, err := b.getInfo(ctx, oid)
		switch {
		case errors.Is(err, ErrNotFound):
			continue // removed meanwhile
		case err != nil:
			fn(oid, handler.FileInfo{}, time.Time{}, err)
			continue
		case !b.validID(stored.ID) || baseID(stored.ID) != oid:
			continue // not made through this service
		}
		info, modified, err := b.load(ctx, stored.ID)
		if errors.Is(err, ErrNotFound) || errors.Is(err, handler.ErrNotFound) {
			continue
		}
		fn(stored.ID, info, modified, err)
	}
	return nil
}

func (b *s3Backing) readSide(ctx context.Context, id string, k side) ([]byte, error) {
	res, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &b.bucket, Key: b.sideKey(baseID(id), k)})
	if notFound(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("uploads: s3: %w", err)
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}

// writeSide: a PUT replaces an object whole, so it is atomic already.
func (b *s3Backing) writeSide(ctx context.Context, id string, k side, data []byte) error {
	_, err := b.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &b.bucket, Key: b.sideKey(baseID(id), k), Body: strings.NewReader(string(data)),
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return fmt.Errorf("uploads: s3: %w", err)
	}
	return nil
}

func (b *s3Backing) openData(ctx context.Context, id string, offset, n int64) (io.ReadCloser, error) {
	in := &s3.GetObjectInput{Bucket: &b.bucket, Key: b.key(baseID(id))}
	switch {
	case n >= 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+n-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	res, err := b.client.GetObject(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("uploads: s3: %w", err)
	}
	return res.Body, nil
}

// firstBytes reads tusd's short last part, <oid>.part: an unfinished
// multipart upload cannot be read back, but while fewer than S3's minimum
// part size (5 MiB) have arrived, every byte is in that object.
func (b *s3Backing) firstBytes(ctx context.Context, id string, n int64) ([]byte, error) {
	res, err := b.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: &b.bucket, Key: b.key(baseID(id) + ".part"), Range: aws.String(fmt.Sprintf("bytes=0-%d", n-1)),
	})
	if err != nil {
		return nil, fmt.Errorf("uploads: s3: %w", err)
	}
	defer res.Body.Close()
	first := make([]byte, n)
	if _, err := io.ReadFull(res.Body, first); err != nil {
		return nil, fmt.Errorf("uploads: s3: %s.part: %w", baseID(id), err)
	}
	return first, nil
}

// finish completes the multipart upload when the object is missing.
func (b *s3Backing) finish(ctx context.Context, id string) error {
	_, err := b.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.bucket, Key: b.key(baseID(id))})
	if !notFound(err) {
		return err
	}
	up, err := b.store.GetUpload(ctx, id)
	if err != nil {
		return err
	}
	return up.FinishUpload(ctx)
}

// localPath: the data is in the bucket.
func (b *s3Backing) localPath(string) string { return "" }

// localFile downloads the data into Dir: tesseract reads files, not
// streams. The copy is removed when the caller is done.
func (b *s3Backing) localFile(ctx context.Context, id string) (string, func(), error) {
	r, err := b.openData(ctx, id, 0, -1)
	if err != nil {
		return "", nil, err
	}
	defer r.Close()
	f, err := os.CreateTemp(b.tmp, baseID(id)+".*.processing")
	if err != nil {
		return "", nil, fmt.Errorf("uploads: %w", err)
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", nil, fmt.Errorf("uploads: downloading %s: %w", id, err)
	}
	return f.Name(), func() { os.Remove(f.Name()) }, nil
}

// remove lets tusd's store abort the multipart upload and delete the data,
// .info and short part, then deletes the side objects.
func (b *s3Backing) remove(ctx context.Context, id string) error {
	var errs []error
	if up, err := b.store.GetUpload(ctx, id); err == nil {
		errs = append(errs, b.store.AsTerminatableUpload(up).Terminate(ctx))
	}
	oid := baseID(id)
	errs = append(errs, b.deleteKeys(ctx, []string{*b.sideKey(oid, sideHash), *b.sideKey(oid, sideText), *b.sideKey(oid, sideDone)}))
	return errors.Join(errs...)
}

// deleteKeys deletes the objects of full keys; missing ones are fine.
func (b *s3Backing) deleteKeys(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	objs := make([]s3types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		objs[i] = s3types.ObjectIdentifier{Key: aws.String(k)}
	}
	res, err := b.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &b.bucket, Delete: &s3types.Delete{Objects: objs, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("uploads: s3: %w", err)
	}
	var errs []error
	for _, e := range res.Errors {
		if aws.ToString(e.Code) != "NoSuchKey" {
			errs = append(errs, fmt.Errorf("uploads: s3: deleting %s: %s", aws.ToString(e.Key), aws.ToString(e.Message)))
		}
	}
	return errors.Join(errs...)
}

// quarantine copies the data and the .info under quarantine/ (S3 has no
// move; a single copy takes objects up to 5 GiB), then removes the upload.
func (b *s3Backing) quarantine(ctx context.Context, id string) error {
	oid := baseID(id)
	for _, name := range []string{oid, oid + ".info"} {
		_, err := b.client.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket:     &b.bucket,
			Key:        b.key(quarantineDir + "/" + name),
			CopySource: aws.String(b.bucket + "/" + url.PathEscape(b.prefix+name)),
		})
		if err != nil && !notFound(err) {
			return fmt.Errorf("uploads: s3: quarantining %s: %w", name, err)
		}
	}
	return b.remove(ctx, id)
}

// sweepLeftovers lists every key under the prefix once: objects this
// service writes (see ownName) of a base id without a .info, older than
// age, are leftovers of an upload removed half-way (a crash); objects
// under quarantine/ go after keep. Under a prefix of Edge's own, multipart
// uploads without a .info (a crash between tusd's two creation requests)
// are aborted after age too.
func (b *s3Backing) sweepLeftovers(ctx context.Context, now time.Time, age, keep time.Duration) ([]leftover, error) {
	type object struct {
		name     string
		modified time.Time
	}
	var objects []object
	infos := map[string]bool{}
	pages := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: &b.bucket, Prefix: aws.String(b.prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("uploads: s3: %w", err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), b.prefix)
			if oid, ok := strings.CutSuffix(name, ".info"); ok && hexID(oid) {
				infos[oid] = true
				continue
			}
			objects = append(objects, object{name: name, modified: aws.ToTime(o.LastModified)})
		}
	}
	var removed []leftover
	var doomed []string
	for _, o := range objects {
		oid, quarantined, ok := b.ownName(o.name)
		switch {
		case !ok:
			continue
		case quarantined && now.Sub(o.modified) < keep:
			continue
		case !quarantined && (infos[oid] || now.Sub(o.modified) < age):
			continue
		}
		doomed = append(doomed, b.prefix+o.name)
		removed = append(removed, leftover{name: o.name, quarantined: quarantined})
	}
	var errs []error
	for len(doomed) > 0 {
		n := min(len(doomed), 1000) // DeleteObjects' limit
		errs = append(errs, b.deleteKeys(ctx, doomed[:n]))
		doomed = doomed[n:]
	}
	if b.prefix != "" {
		errs = append(errs, b.abortStrayMultiparts(ctx, now, age, infos))
	}
	removed = append(removed, b.sweepTemp(now, age)...)
	return removed, errors.Join(errs...)
}

// sweepTemp removes the local temporary files a crash left in Dir: tusd's
// buffered parts ("tusd-s3-*") and processors' copies (".processing"),
// which live for one request or one job, once older than age.
func (b *s3Backing) sweepTemp(now time.Time, age time.Duration) []leftover {
	entries, err := os.ReadDir(b.tmp)
	if err != nil {
		return nil
	}
	var removed []leftover
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || (!strings.HasPrefix(name, "tusd-s3-") && !strings.HasSuffix(name, ".processing")) {
			continue
		}
		if fi, err := e.Info(); err != nil || now.Sub(fi.ModTime()) < age {
			continue
		}
		if os.Remove(filepath.Join(b.tmp, name)) == nil {
			removed = append(removed, leftover{name: name})
		}
	}
	return removed
}

// ownName reports whether name (a key without the prefix) is one this
// service writes beside an upload, and for which base id. A bare "<oid>"
// (an upload's data) counts only under a prefix of its own: in a shared
// bucket root, hex-named objects may well be someone else's.
func (b *s3Backing) ownName(name string) (oid string, quarantined, ok bool) {
	if rest, found := strings.CutPrefix(name, quarantineDir+"/"); found {
		oid = strings.TrimSuffix(rest, ".info")
		return oid, true, hexID(oid)
	}
	if rest, found := strings.CutPrefix(name, textDir+"/"); found {
		oid, found = strings.CutSuffix(rest, ".txt")
		return oid, false, found && hexID(oid)
	}
	for _, suffix := range []string{".sha256", ".done", ".part"} {
		if oid, found := strings.CutSuffix(name, suffix); found {
			return oid, false, hexID(oid)
		}
	}
	return name, false, b.prefix != "" && hexID(name)
}

// abortStrayMultiparts is only called under a prefix of Edge's own, for
// the reason ownName gives.
func (b *s3Backing) abortStrayMultiparts(ctx context.Context, now time.Time, age time.Duration, infos map[string]bool) error {
	pages := s3.NewListMultipartUploadsPaginator(b.client, &s3.ListMultipartUploadsInput{Bucket: &b.bucket, Prefix: aws.String(b.prefix)})
	var errs []error
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("uploads: s3: %w", err)
		}
		for _, u := range page.Uploads {
			oid := strings.TrimPrefix(aws.ToString(u.Key), b.prefix)
			if !hexID(oid) || infos[oid] || now.Sub(aws.ToTime(u.Initiated)) < age {
				continue
			}
			_, err := b.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b.bucket, Key: u.Key, UploadId: u.UploadId})
			if err != nil && !notFound(err) {
				errs = append(errs, fmt.Errorf("uploads: s3: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// notFound reports whether err is S3's answer for a missing key or
// multipart upload. Services differ in which they send.
func notFound(err error) bool {
	var nsk *s3types.NoSuchKey
	var nf *s3types.NotFound
	var nsu *s3types.NoSuchUpload
	if errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &nsu) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound", "NoSuchUpload":
			return true
		}
	}
	return false
}
