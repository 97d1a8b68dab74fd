package helperapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"gotest.tools/v3/assert"
	"gotest.tools/v3/golden"
)

// fill sets every field reachable from v to a value that is not its zero,
// derived from the field's path alone: two types of the same shape (field
// names, JSON names, kinds) fill to the same JSON, and a field left out of
// one or renamed shows as a difference.
func fill(v reflect.Value, path string) {
	switch v.Type() {
	case reflect.TypeOf(time.Time{}):
		v.Set(reflect.ValueOf(time.Date(2026, 12, 2, 8, 30, 0, len(path), time.UTC)))
		return
	case reflect.TypeOf(json.RawMessage{}):
		v.Set(reflect.ValueOf(json.RawMessage(fmt.Sprintf(`{"path":%q}`, path))))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !f.IsExported() || f.Tag.Get("json") == "-" {
				continue
			}
			fill(v.Field(i), path+"."+f.Name)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), path)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := 0; i < 2; i++ {
			fill(s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, path+".key")
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, path+".value")
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.String:
		v.SetString(path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(1 + len(path)%100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(1 + len(path)%100))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(1+len(path)%100) / 4)
	default:
		panic(fmt.Sprintf("fill: %s has kind %s", path, v.Kind()))
	}
}

// wireGolden are the messages whose Go types changed while their JSON must
// not: each golden document was written by the code before the change.
var wireGolden = map[string]func() any{
	"dump-request.json":   func() any { return new(DumpRequest) },
	"export-request.json": func() any { return new(ExportRequest) },
}

func encodeWire(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	assert.NilError(t, err)
	return append(b, '\n')
}

// TestWireGolden: every field of these requests, filled, encodes exactly
// as the golden document says.
func TestWireGolden(t *testing.T) {
	for name, mk := range wireGolden {
		v := mk()
		fill(reflect.ValueOf(v).Elem(), "")
		got := encodeWire(t, v)
		golden.Assert(t, string(got), filepath.Join("wire", name))
	}
}

// TestWireGoldenDecode: a golden document decodes into today's types with no
// field left over and encodes back byte for byte.
func TestWireGoldenDecode(t *testing.T) {
	for name, mk := range wireGolden {
		want := golden.Get(t, filepath.Join("wire", name))
		v := mk()
		dec := json.NewDecoder(bytes.NewReader(want))
		dec.DisallowUnknownFields()
		assert.NilError(t, dec.Decode(v), name)
		assert.Check(t, bytes.Equal(encodeWire(t, v), want), "%s does not encode back identically", name)
	}
}
