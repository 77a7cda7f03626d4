package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/ent"
	"github.com/datapulse/datapulse/ent/idempotencykey"
)

// Idempotency keys (the IETF httpapi "Idempotency-Key" header).
//
// A route opts in with Metadata: idempotent() in its huma.Operation. A
// request to it with an Idempotency-Key header is handled so:
//
//  1. The key is reserved for the caller's user: a row (user, key, request
//     hash, in_progress, locked_until) is inserted in its own transaction
//     before the handler runs. The unique index on (user_id, key) decides
//     between concurrent requests: exactly one of them runs the handler.
//  2. The handler runs as usual (its service writes in its own transaction).
//  3. Its response (status, Content-Type, Location, body) is stored on the row
//     (state completed) BEFORE the response is sent, so a client that saw any
//     response finds it stored. 5xx and 429 answers are not stored: the row is
//     deleted and a retry runs again (such answers mean nothing was written,
//     or the service could not say).
//
// A later request with the same key and user:
//   - same method, path, query and body (JSON compared after whitespace
//     compaction): the stored response, with Idempotent-Replayed: true;
//   - anything else (another body, another route): 422
//     idempotency_key_reused, nothing runs;
//   - while the first one runs: 409 idempotency_key_in_use with Retry-After;
//   - when the first one was interrupted between steps 1 and 3 (the process
//     was killed; its lease, locked_until, ran out): 409
//     idempotency_outcome_unknown. Whether it took effect is unknown, so it
//     is never run again under that key: the client checks and uses a new key.
//
// Why a reservation and not the same transaction as the write: the services
// own their transactions (store.WithTx inside each service), and the HTTP
// layer cannot join them without every service taking a transaction
// parameter. The guarantee given is therefore: no request is executed twice
// under one key (the reservation commits before the handler starts), and any
// response a client received is replayed; only a crash inside the window
// between the service's commit and the response's store (one small write)
// leaves a key whose outcome is unknown, answered as such rather than
// guessed.
//
// Keys are kept IdempotencyTTL after first use; expired rows are deleted by
// the next request that needs the key and by a prune that runs at most every
// idempotencyPruneEvery.
const (
	IdempotencyKeyHeader   = "Idempotency-Key"
	IdempotentReplayHeader = "Idempotent-Replayed"
	IdempotencyTTL         = 24 * time.Hour
	idempotencyPruneEvery  = 10 * time.Minute
	idempotencyMaxKeyLen   = 255
	idempotencyMetaKey     = "idempotent"
)

// idempotent is the Metadata of an operation that accepts Idempotency-Key.
func idempotent() map[string]any { return map[string]any{idempotencyMetaKey: true} }

func isIdempotent(op *huma.Operation) bool {
	v, _ := op.Metadata[idempotencyMetaKey].(bool)
	return v
}

// replayedHeaders are the response headers stored and replayed.
var replayedHeaders = []string{"Content-Type", "Location", "Content-Location"}

// validIdempotencyKey: 1–255 visible ASCII characters.
func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > idempotencyMaxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// requestHash identifies a request's content: method, path, query and body.
func requestHash(fc *fiber.Ctx) string {
	h := sha256.New()
	body := fc.Body()
	var compact bytes.Buffer
	if len(body) > 0 && json.Compact(&compact, body) == nil {
		body = compact.Bytes()
	}
	for _, part := range [][]byte{[]byte(fc.Method()), []byte(fc.Path()), fc.Request().URI().QueryString(), body} {
		h.Write([]byte(strconv.Itoa(len(part))))
		h.Write([]byte{0})
		h.Write(part)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// idempotencyState is the server's prune clock.
type idempotencyState struct {
	lastPrune atomic.Int64 // unix nanoseconds
	started   time.Time    // when this server was built
}

// idempotency is the huma middleware (after authorize) of opted-in routes.
func (s *Server) idempotency(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	if !isIdempotent(op) || s.deps.Store == nil {
		next(ctx)
		return
	}
	fc := humafiber.Unwrap(ctx)
	present := false
	fc.Request().Header.VisitAll(func(k, _ []byte) {
		if bytes.EqualFold(k, []byte(IdempotencyKeyHeader)) {
			present = true
		}
	})
	if !present {
		next(ctx)
		return
	}
	key := fc.Get(IdempotencyKeyHeader)
	if !validIdempotencyKey(key) {
		msg := "Idempotency-Key must be 1 to 255 visible ASCII characters"
		huma.WriteErr(s.api, ctx, http.StatusBadRequest, msg, &huma.ErrorDetail{Location: "header." + IdempotencyKeyHeader, Message: msg})
		return
	}
	p, ok := principal.From(ctx.Context())
	if !ok || p.UserID == uuid.Nil {
		// Only authenticated routes opt in; without a user there is no scope
		// for the key.
		next(ctx)
		return
	}
	route := op.Method + " " + op.Path
	hash := requestHash(fc)
	lease := s.deps.RequestTimeout + 30*time.Second

	rowID, stored, err := s.reserveKey(ctx.Context(), p.UserID, key, hash, route, lease)
	if err != nil {
		var ie *idempotencyErr
		if errors.As(err, &ie) {
			s.writeIdempotencyErr(fc, ie)
			return
		}
		huma.WriteErr(s.api, ctx, http.StatusInternalServerError, "", err)
		return
	}
	if stored != nil {
		replay(fc, stored)
		return
	}
	s.maybePruneIdempotencyKeys()

	completed := false
	defer func() {
		if completed {
			return
		}
		// A panic (or anything that skipped the store below): free the key
		// so that a retry runs; the panic goes on to the recover middleware.
		s.releaseKey(rowID)
	}()
	next(ctx)

	status := fc.Response().StatusCode()
	if status >= 500 || status == http.StatusTooManyRequests || fc.Response().IsBodyStream() {
		return // deferred release
	}
	headers := map[string]string{}
	for _, h := range replayedHeaders {
		if v := fc.GetRespHeader(h); v != "" {
			headers[h] = v
		}
	}
	body := append([]byte(nil), fc.Response().Body()...)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx.Context()), 10*time.Second)
	defer cancel()
	err = s.deps.Store.Client.IdempotencyKey.UpdateOneID(rowID).
		SetState(idempotencykey.StateCompleted).
		SetStatus(status).
		SetHeaders(headers).
		SetBody(body).
		Exec(sctx)
	if err != nil {
		// The write happened and its answer goes out; the key stays
		// reserved and ends as "outcome unknown" (never run twice).
		s.log.ErrorContext(sctx, "idempotency: storing the response failed", "error", err, "route", route, "request_id", requestIDOf(fc))
	}
	completed = true
}

// storedResponse is a completed key's response.
type storedResponse struct {
	status  int
	headers map[string]string
	body    []byte
}

type idempotencyErr struct {
	status     int
	code       string
	msg        string
	retryAfter int
}

func (e *idempotencyErr) Error() string { return e.msg }

func (s *Server) writeIdempotencyErr(fc *fiber.Ctx, ie *idempotencyErr) {
	e := newError(ie.status, ie.code, ie.msg)
	e.Err.RequestID = requestIDOf(fc)
	if ie.retryAfter > 0 {
		fc.Set("Retry-After", strconv.Itoa(ie.retryAfter))
	}
	b, _ := json.Marshal(e)
	fc.Status(ie.status)
	fc.Set("Content-Type", "application/json")
	fc.Response().SetBodyRaw(b)
}

func replay(fc *fiber.Ctx, r *storedResponse) {
	fc.Status(r.status)
	for k, v := range r.headers {
		fc.Set(k, v)
	}
	fc.Set(IdempotentReplayHeader, "true")
	fc.Response().SetBodyRaw(r.body)
}

// reserveKey inserts the reservation, or reports what the existing row
// says: a stored response to replay, or an idempotencyErr.
func (s *Server) reserveKey(ctx context.Context, user uuid.UUID, key, hash, route string, lease time.Duration) (uuid.UUID, *storedResponse, error) {
	c := s.deps.Store.Client
	for attempt := 0; attempt < 4; attempt++ {
		now := time.Now().UTC()
		row, err := c.IdempotencyKey.Create().
			SetUserID(user).SetKey(key).SetRequestHash(hash).SetRoute(route).
			SetLockedUntil(now.Add(lease)).SetExpiresAt(now.Add(IdempotencyTTL)).
			Save(ctx)
		if err == nil {
			return row.ID, nil, nil
		}
		if !ent.IsConstraintError(err) {
			return uuid.Nil, nil, fmt.Errorf("idempotency: reserve key: %w", err)
		}
		old, err := c.IdempotencyKey.Query().
			Where(idempotencykey.UserID(user), idempotencykey.Key(key)).Only(ctx)
		if ent.IsNotFound(err) {
			continue // released or pruned meanwhile
		}
		if err != nil {
			return uuid.Nil, nil, fmt.Errorf("idempotency: read key: %w", err)
		}
		if !old.ExpiresAt.After(now) {
			// Expired: gone, as if pruned; this request takes the key.
			if _, err := c.IdempotencyKey.Delete().Where(idempotencykey.ID(old.ID), idempotencykey.ExpiresAtLTE(now)).Exec(ctx); err != nil {
				return uuid.Nil, nil, fmt.Errorf("idempotency: drop expired key: %w", err)
			}
			continue
		}
		if old.RequestHash != hash {
			msg := "this Idempotency-Key was already used with a different request"
			if old.Route != route {
				msg += " (" + old.Route + ")"
			} else {
				msg += " (another body or query)"
			}
			msg += "; use a new key for a new request"
			return uuid.Nil, nil, &idempotencyErr{status: http.StatusUnprocessableEntity, code: "idempotency_key_reused", msg: msg}
		}
		if old.State == idempotencykey.StateCompleted {
			return uuid.Nil, &storedResponse{status: old.Status, headers: old.Headers, body: old.Body}, nil
		}
		// On SQLite one process serves the database: a reservation older
		// than this process belongs to one that died, whatever its lease.
		orphan := s.deps.Store.Dialect == store.SQLite && old.CreatedAt.Before(s.idem.started)
		if old.LockedUntil.After(now) && !orphan {
			return uuid.Nil, nil, &idempotencyErr{status: http.StatusConflict, code: "idempotency_key_in_use", retryAfter: 1,
				msg: "a request with this Idempotency-Key is still in progress; retry after it completes"}
		}
		return uuid.Nil, nil, &idempotencyErr{status: http.StatusConflict, code: "idempotency_outcome_unknown",
			msg: "the first request with this Idempotency-Key was interrupted (the server stopped while it ran) and whether it took effect is unknown; " +
				"check for its result, and use a new key to try again"}
	}
	return uuid.Nil, nil, &idempotencyErr{status: http.StatusConflict, code: "idempotency_key_in_use", retryAfter: 1,
		msg: "a request with this Idempotency-Key is changing state; retry"}
}

// releaseKey deletes a reservation whose request stored no response.
func (s *Server) releaseKey(id uuid.UUID) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.deps.Store.Client.IdempotencyKey.DeleteOneID(id).
		Where(idempotencykey.StateEQ(idempotencykey.StateInProgress)).Exec(ctx); err != nil && !ent.IsNotFound(err) {
		s.log.Error("idempotency: releasing a key failed; it ends as outcome unknown", "error", err)
	}
}

// maybePruneIdempotencyKeys deletes expired keys, at most every
// idempotencyPruneEvery, in the background.
func (s *Server) maybePruneIdempotencyKeys() {
	now := time.Now().UnixNano()
	last := s.idem.lastPrune.Load()
	if now-last < int64(idempotencyPruneEvery) || !s.idem.lastPrune.CompareAndSwap(last, now) {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := PruneIdempotencyKeys(ctx, s.deps.Store.Client, time.Now()); err != nil {
			s.log.Warn("idempotency: pruning expired keys failed", "error", err)
		}
	}()
}

// PruneIdempotencyKeys deletes the keys expired at now and returns how many.
func PruneIdempotencyKeys(ctx context.Context, c *ent.Client, now time.Time) (int, error) {
	return c.IdempotencyKey.Delete().Where(idempotencykey.ExpiresAtLTE(now.UTC())).Exec(ctx)
}

// documentIdempotency declares the Idempotency-Key header on an opted-in
// operation (its statuses are added by documentOperation).
func documentIdempotency(op *huma.Operation) {
	op.Parameters = append(op.Parameters, &huma.Param{
		Name: IdempotencyKeyHeader, In: "header", Required: false,
		Description: "Optional. Makes a retry of this request safe: the first response is stored with the key for the calling user for 24 hours " +
			"and a retry with the same key and the same request gets it again, with the header " + IdempotentReplayHeader + ": true, without running twice. " +
			"The same key with another body, query or route is refused (422 idempotency_key_reused); while the first request runs a retry gets " +
			"409 idempotency_key_in_use with Retry-After. 1 to 255 visible ASCII characters (400 otherwise); a UUID is a good key.",
		Schema: &huma.Schema{Type: huma.TypeString, MinLength: ptr(1), MaxLength: ptr(idempotencyMaxKeyLen), Pattern: `^[\x21-\x7E]+$`},
	})
	if op.Description != "" {
		op.Description += " "
	}
	op.Description += "Accepts an Idempotency-Key header for safe retries."
}
