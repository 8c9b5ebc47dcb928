package sip

import (
	"reflect"
	"testing"
	"time"
)

func TestParseTrunk(t *testing.T) {
	tests := []struct {
		in      string
		want    Trunk
		wantErr bool
	}{
		{in: "carrier=sip:u:p@sip.example:5080", want: Trunk{Name: "carrier", User: "u", Password: "p", Host: "sip.example", Port: 5080}},
		{in: "pbx=sip:10.0.0.2", want: Trunk{Name: "pbx", Host: "10.0.0.2", Port: 5060}},
		{in: "pbx=sip:10.0.0.2:5070;transport=tcp", want: Trunk{Name: "pbx", Host: "10.0.0.2", Port: 5070, TCP: true}},
		{in: "carrier=sip:u:p@10.0.0.2;register", want: Trunk{Name: "carrier", User: "u", Password: "p", Host: "10.0.0.2", Port: 5060, Register: DefaultRegister}},
		{in: "carrier=sip:u:p@10.0.0.2;transport=tcp;register=600", want: Trunk{Name: "carrier", User: "u", Password: "p", Host: "10.0.0.2", Port: 5060, TCP: true, Register: 600 * time.Second}},
		{in: "carrier=sip:10.0.0.2;register=soon", wantErr: true},
		{in: "carrier=sip:10.0.0.2;register=0", wantErr: true},
		{in: "uk=sip:10.0.0.2;prefix=+44", want: Trunk{Name: "uk", Host: "10.0.0.2", Port: 5060, Prefixes: []string{"+44"}}},
		{in: "eu=sip:u:p@10.0.0.2:5070;prefix=+33,+49;transport=tcp;prefix=+4420", want: Trunk{Name: "eu", User: "u", Password: "p", Host: "10.0.0.2", Port: 5070, TCP: true, Prefixes: []string{"+33", "+49", "+4420"}}},
		{in: "x=sip:10.0.0.2;prefix=44", wantErr: true},
		{in: "x=sip:10.0.0.2;prefix=+", wantErr: true},
		{in: "x=sip:10.0.0.2;prefix", wantErr: true},
		{in: "x=sip:10.0.0.2;prefix=+4a", wantErr: true},
		{in: "carrier", wantErr: true},
		{in: "=sip:10.0.0.2", wantErr: true},
		{in: "carrier=http://x", wantErr: true},
		{in: "carrier=sip:u@10.0.0.2", wantErr: true}, // a user without a password
		{in: "carrier=sip:10.0.0.2;transport=sctp", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseTrunk(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("ParseTrunk(%q) = %+v, %v; want %+v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if s := (Trunk{Name: "c", User: "u", Password: "secret", Host: "h", Port: 1}).String(); s != "c=sip:u@h:1" {
		t.Errorf("String() = %q, want the trunk without its password", s)
	}
}

func TestNumbers(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"+14255550123", "+14255550123", true},
		{"14255550123", "+14255550123", true},
		{"+1-425-555-0123", "+14255550123", true},
		{"+14255550123;npdi;rn=+1425", "+14255550123", true},
		{"anonymous", "", false},
		{"+0425", "", false},
		{"", "", false},
		{"1+2", "", false},
	}
	for _, tt := range tests {
		if got, ok := e164(tt.in); got != tt.want || ok != tt.ok {
			t.Errorf("e164(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	addrs := []struct {
		in, number, name string
		ok               bool
	}{
		{`"Customer" <sip:+14255550123@carrier.example;user=phone>`, "+14255550123", "Customer", true},
		{`<tel:+1-425-555-0123;npdi>`, "+14255550123", "", true},
		{`sip:14255550123@10.0.0.1`, "+14255550123", "", true},
		{`"Anonymous" <sip:anonymous@anonymous.invalid>`, "", "", false},
	}
	for _, tt := range addrs {
		n, name, ok := addressNumber(tt.in)
		if n != tt.number || ok != tt.ok || (ok && name != tt.name) {
			t.Errorf("addressNumber(%q) = %q, %q, %v; want %q, %q, %v", tt.in, n, name, ok, tt.number, tt.name, tt.ok)
		}
	}
}

func TestTrunkFor(t *testing.T) {
	var (
		any1 = Trunk{Name: "any1"}
		any2 = Trunk{Name: "any2"}
		uk   = Trunk{Name: "uk", Prefixes: []string{"+44"}}
		ldn  = Trunk{Name: "london", Prefixes: []string{"+4420"}}
		eu   = Trunk{Name: "eu", Prefixes: []string{"+33", "+49", "+44"}}
	)
	tests := []struct {
		name   string
		trunks []Trunk
		number string
		want   string // "" for none
	}{
		{"no trunks", nil, "+14255550123", ""},
		{"one trunk without prefixes", []Trunk{any1}, "+14255550123", "any1"},
		{"the first without prefixes", []Trunk{uk, any1, any2}, "+14255550123", "any1"},
		{"a prefix wins over no prefix", []Trunk{any1, uk}, "+442071234567", "uk"},
		{"the longest prefix wins", []Trunk{uk, ldn, any1}, "+442071234567", "london"},
		{"the longest prefix wins, in any order", []Trunk{ldn, uk}, "+442071234567", "london"},
		{"a shorter prefix when the longer does not match", []Trunk{uk, ldn}, "+441611234567", "uk"},
		{"a tie goes to the first trunk", []Trunk{eu, uk}, "+441611234567", "eu"},
		{"one of several prefixes", []Trunk{uk, eu, any1}, "+4930123456", "eu"},
		{"prefixes only, none matches", []Trunk{uk, eu}, "+14255550123", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := trunkFor(tt.trunks, tt.number)
			if ok != (tt.want != "") || got.Name != tt.want {
				t.Errorf("trunkFor(%s) = %q, %v; want %q", tt.number, got.Name, ok, tt.want)
			}
		})
	}
}
