package shadow_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/darktime/darktime/shadow"
)

// A config file: mirror 12.5% of users, picked by their uid cookie, onto
// the candidate; every publish goes to the candidate's own endpoint too.
func ExampleLoadConfig() {
	cfg, err := shadow.LoadConfig([]byte(`
primary: http://127.0.0.1:8080
candidate: http://127.0.0.1:8081
mode: mirror
percent: 12.5
key: {from: cookie, name: uid, salt: spring}
routes:
  - path: /pub
    percent: 100
    mirror_unsafe: true
`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(cfg.Mode, cfg.Percent, cfg.Key.From, len(cfg.Routes))

	_, err = shadow.LoadConfig([]byte("primary: http://127.0.0.1:8080\npercent: 12.345\n"))
	fmt.Println(err != nil)
	// Output:
	// mirror 12.5 cookie 1
	// true
}

// The admin API beyond loopback needs a token; on loopback it is optional
// (and required once set).
func ExampleCheckAdminListener() {
	fmt.Println(shadow.CheckAdminListener("127.0.0.1:9092", ""))
	fmt.Println(errors.Is(shadow.CheckAdminListener("0.0.0.0:9092", ""), shadow.ErrAdminTokenRequired))
	fmt.Println(shadow.CheckAdminListener("0.0.0.0:9092", "a-long-random-secret"))
	// Output:
	// <nil>
	// true
	// <nil>
}
