package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

func TestRegister(t *testing.T) { forEachBackend(t, testRegister) }

func testRegister(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	app.do("POST", "/register/", "", `{"username":"Taken.Name","password":"password1"}`).mustStatus(t, http.StatusCreated)

	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"success", `{"username":"new_user@x.org+1-2","password":"password1"}`, 201, ""},
		{"without final slash works too", `{"username":"noslash","password":"password1"}`, 201, ""},
		{"unknown fields ignored", `{"username":"extra","password":"password1","email":"x@y.z"}`, 201, ""},
		{"150-character name", `{"username":"` + strings.Repeat("a", 150) + `","password":"password1"}`, 201, ""},
		{"72-byte password", `{"username":"longpw","password":"` + strings.Repeat("p", 72) + `"}`, 201, ""},
		{"missing username", `{"password":"password1"}`, 400, "invalid_request"},
		{"missing password", `{"username":"nopw"}`, 400, "invalid_request"},
		{"null username", `{"username":null,"password":"password1"}`, 400, "invalid_request"},
		{"username not a string", `{"username":42,"password":"password1"}`, 400, "invalid_request"},
		{"password not a string", `{"username":"pwnum","password":12345678}`, 400, "invalid_request"},
		{"password too short", `{"username":"shortpw","password":"1234567"}`, 400, "invalid_request"},
		{"password too long", `{"username":"longerpw","password":"` + strings.Repeat("p", 73) + `"}`, 400, "invalid_request"},
		{"empty username", `{"username":"","password":"password1"}`, 400, "invalid_request"},
		{"151-character name", `{"username":"` + strings.Repeat("a", 151) + `","password":"password1"}`, 400, "invalid_request"},
		{"space in name", `{"username":"a b","password":"password1"}`, 400, "invalid_request"},
		{"non-ASCII name", `{"username":"jos\u00e9","password":"password1"}`, 400, "invalid_request"},
		{"NUL in name", `{"username":"a\u0000b","password":"password1"}`, 400, "invalid_request"},
		{"duplicate in another case", `{"username":"taken.name","password":"password1"}`, 409, "conflict"},
		{"malformed JSON", `{"username":"x",`, 400, "invalid_request"},
		{"JSON array", `[{"username":"arr","password":"password1"}]`, 400, "invalid_request"},
		{"JSON string", `"hello"`, 400, "invalid_request"},
		{"empty body", ``, 400, "invalid_request"},
		{"trailing garbage", `{"username":"trail","password":"password1"} x`, 400, "invalid_request"},
		{"two objects", `{"username":"two","password":"password1"}{}`, 400, "invalid_request"},
		{"2 MiB body", `{"username":"big","password":"password1","pad":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "payload_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/register/"
			if strings.Contains(tt.name, "final slash") {
				path = "/register"
			}
			res := app.do("POST", path, "", tt.body).mustStatus(t, tt.status)
			if tt.status != 201 {
				if got := res.errorCode(t); got != tt.code {
					t.Fatalf("code: got %q, want %q", got, tt.code)
				}
				return
			}
			token, _ := res.json(t)["access_token"].(string)
			if _, err := app.auth.verify(token); err != nil {
				t.Fatalf("access_token does not verify: %v", err)
			}
		})
	}

	// Nothing that failed created an account.
	for _, name := range []string{"nopw", "shortpw", "longerpw", "trail", "two", "big", "arr", "pwnum"} {
		if _, err := app.store.UserByName(context.Background(), name); err != errNotFound {
			t.Errorf("user %q exists after a failed registration", name)
		}
	}
}

func TestLogin(t *testing.T) { forEachBackend(t, testLogin) }

func testLogin(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()

	tests := []struct {
		name     string
		body     any
		status   int
		wantCode string
	}{
		{"success", map[string]string{"username": u.name, "password": u.password}, 200, ""},
		{"name in another case", map[string]string{"username": strings.ToUpper(u.name), "password": u.password}, 200, ""},
		{"wrong password", map[string]string{"username": u.name, "password": "wrong password"}, 401, "unauthorized"},
		{"unknown user", map[string]string{"username": "nobody", "password": u.password}, 401, "unauthorized"},
		{"missing password", map[string]string{"username": u.name}, 400, "invalid_request"},
		{"NUL in username", map[string]string{"username": "a\x00b", "password": u.password}, 400, "invalid_request"},
		{"NUL in password", map[string]string{"username": u.name, "password": "pass\x00word"}, 400, "invalid_request"},
		{"null body", "null", 400, "invalid_request"},
		{"malformed JSON", "{", 400, "invalid_request"},
	}
	var messages []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := app.do("POST", "/login/", "", tt.body).mustStatus(t, tt.status)
			if tt.status == 200 {
				id, err := app.auth.verify(res.json(t)["access_token"].(string))
				if err != nil || id == "" {
					t.Fatalf("token: account %q, err %v", id, err)
				}
				app.do("GET", "/collection/", res.json(t)["access_token"].(string), nil).mustStatus(t, 200)
				return
			}
			if got := res.errorCode(t); got != tt.wantCode {
				t.Fatalf("code: got %q, want %q", got, tt.wantCode)
			}
			if tt.status == 401 {
				messages = append(messages, string(res.body))
			}
		})
	}
	if len(messages) != 2 || messages[0] != messages[1] {
		t.Fatalf("unknown user and wrong password must answer alike: %q", messages)
	}
}

func TestAuthMiddleware(t *testing.T) { forEachBackend(t, testAuthMiddleware) }

func testAuthMiddleware(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	id, _ := app.auth.verify(u.token)

	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(key)
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		return s
	}
	now := time.Now()
	valid := jwt.MapClaims{"sub": id, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	ours := func(claims jwt.MapClaims) string {
		return "Bearer " + sign(jwt.SigningMethodHS256, app.auth.secret, claims)
	}
	parts := strings.Split(u.token, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"00000000-0000-4000-8000-000000000001","exp":9999999999}`)) + "." + parts[2]
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	noneToken := noneHeader + "." + parts[1] + "."

	tests := []struct {
		name   string
		header string
		status int
	}{
		{"valid token", "Bearer " + u.token, 200},
		{"lowercase scheme", "bearer " + u.token, 200},
		{"no header", "", 401},
		{"no Bearer", u.token, 401},
		{"Basic scheme", "Basic " + u.token, 401},
		{"Bearer without token", "Bearer ", 401},
		{"garbage", "Bearer not.a.token", 401},
		{"tampered payload", "Bearer " + tampered, 401},
		{"tampered signature", "Bearer " + u.token[:len(u.token)-4] + "AAAA", 401},
		{"another key", "Bearer " + sign(jwt.SigningMethodHS256, []byte("another key"), valid), 401},
		{"alg none", "Bearer " + noneToken, 401},
		{"HS512 with our key", "Bearer " + sign(jwt.SigningMethodHS512, app.auth.secret, valid), 401},
		{"signed by us", ours(valid), 200},
		{"expired", ours(jwt.MapClaims{"sub": id, "iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}), 401},
		{"no exp", ours(jwt.MapClaims{"sub": id, "iat": now.Unix()}), 401},
		{"exp as a string", ours(jwt.MapClaims{"sub": id, "exp": fmt.Sprint(now.Add(time.Hour).Unix())}), 401},
		{"sub a row number", ours(jwt.MapClaims{"sub": "1", "exp": now.Add(time.Hour).Unix()}), 401},
		{"sub not canonical", ours(jwt.MapClaims{"sub": strings.ToUpper(id), "exp": now.Add(time.Hour).Unix()}), 401},
		{"sub of no account", ours(jwt.MapClaims{"sub": newUUID(), "exp": now.Add(time.Hour).Unix()}), 401},
		{"sub not a user id", ours(jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()}), 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := func(path string) response {
				r := app.do("GET", path, "", nil)
				if tt.header != "" {
					r = app.doHeader("GET", path, tt.header)
				}
				return r
			}
			for _, path := range []string{"/collection/", "/request-count/"} {
				res := req(path).mustStatus(t, tt.status)
				if tt.status == 401 {
					if got := res.errorCode(t); got != "unauthorized" {
						t.Fatalf("code: got %q", got)
					}
					if !strings.Contains(string(res.body), errUnauthorized.Message) {
						t.Fatalf("401 leaks the parser's reason: %s", res.body)
					}
				}
			}
		})
	}
	if id == "" {
		t.Fatal("no account in the token")
	}
}

// doHeader sends a GET with a raw Authorization header.
func (a *testApp) doHeader(method, path, authorization string) response {
	a.t.Helper()
	return a.doWith(method, path, nil, map[string]string{"Authorization": authorization})
}

func TestRegisterRaceCreatesOneAccount(t *testing.T) {
	forEachBackend(t, testRegisterRaceCreatesOneAccount)
}

func testRegisterRaceCreatesOneAccount(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	const n = 50
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			name := "racer"
			if i%2 == 1 {
				name = "RACER"
			}
			statuses[i] = app.do("POST", "/register/", "", map[string]string{"username": name, "password": "password1"}).status
		}()
	}
	close(start)
	wg.Wait()
	created, conflicts, shed := 0, 0, 0
	for _, s := range statuses {
		switch s {
		case 201:
			created++
		case 409:
			conflicts++
		case 503: // hashing saturated: refused at once, which is allowed
			shed++
		default:
			t.Errorf("unexpected status %d", s)
		}
	}
	if created != 1 || conflicts+shed != n-1 {
		t.Fatalf("got %d created, %d conflicts and %d refused, want 1 and %d", created, conflicts, shed, n-1)
	}
	var accounts int
	app.store.db.read.QueryRow(`SELECT count(*) FROM users WHERE lower(username) = 'racer'`).Scan(&accounts)
	if accounts != 1 {
		t.Fatalf("accounts named racer: got %d, want 1", accounts)
	}
}

func TestGeneratedSecretSurvivesRestart(t *testing.T) {
	forEachBackend(t, testGeneratedSecretSurvivesRestart)
}

func testGeneratedSecretSurvivesRestart(t *testing.T, be backend) {
	dsn := be.dsn(t)
	first := newTestApp(t, withDSN(dsn))
	u := first.newUser()
	first.close()

	second := newTestApp(t, withDSN(dsn))
	second.do("GET", "/collection/", u.token, nil).mustStatus(t, http.StatusOK)

	// A configured secret takes precedence: the old token is then invalid.
	third := newTestApp(t, withDSN(dsn), withEnv("JWT_SECRET", "a configured secret of enough length"))
	third.do("GET", "/collection/", u.token, nil).mustStatus(t, http.StatusUnauthorized)
}

func TestPasswordStoredAsBcrypt(t *testing.T) { forEachBackend(t, testPasswordStoredAsBcrypt) }

func testPasswordStoredAsBcrypt(t *testing.T, be backend) {
	app := newTestApp(t, be.fresh(t))
	u := app.newUser()
	stored, err := app.store.UserByName(context.Background(), u.name)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored.PasswordHash, u.password) {
		t.Fatal("password stored in clear")
	}
	if err := bcrypt.CompareHashAndPassword([]byte(stored.PasswordHash), []byte(u.password)); err != nil {
		t.Fatalf("stored hash does not match the password: %v", err)
	}
}

func TestTokenExpiresEvenAfterUse(t *testing.T) {
	app := newTestApp(t)
	u := app.newUser()
	app.do("GET", "/collection/", u.token, nil).mustStatus(t, 200)
	app.do("GET", "/collection/", u.token, nil).mustStatus(t, 200)
	app.auth.now = func() time.Time { return time.Now().Add(time.Hour + time.Second) }
	app.do("GET", "/collection/", u.token, nil).mustStatus(t, 401)
}
