package codextest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// jsonSchemaFormat returns text.format when it asks for structured output
// (type json_schema with an object schema).
func jsonSchemaFormat(req map[string]any) (name string, schema map[string]any, strict, ok bool) {
	text, _ := req["text"].(map[string]any)
	f, _ := text["format"].(map[string]any)
	if f["type"] != "json_schema" {
		return "", nil, false, false
	}
	schema, ok = f["schema"].(map[string]any)
	name, _ = f["name"].(string)
	strict, _ = f["strict"].(bool)
	return name, schema, strict, ok
}

// validateFormat applies the structured-outputs rules the backend enforces
// on a strict json_schema: every object says additionalProperties: false
// and lists each of its properties in required.
func validateFormat(req map[string]any) *apiError {
	text, _ := req["text"].(map[string]any)
	f, _ := text["format"].(map[string]any)
	if f == nil || f["type"] != "json_schema" {
		return nil
	}
	name, schema, strict, ok := jsonSchemaFormat(req)
	if !ok {
		return badRequest("Invalid type for 'text.format.schema': expected an object.", "text.format.schema", "invalid_type")
	}
	if name == "" {
		return badRequest("Missing required parameter: 'text.format.name'.", "text.format.name", "missing_required_parameter")
	}
	if !strict {
		return nil
	}
	if msg := strictSchemaProblem(schema, nil); msg != "" {
		return badRequest(fmt.Sprintf("Invalid schema for response_format '%s': %s", name, msg), "text.format.schema", "invalid_json_schema")
	}
	return nil
}

// strictSchemaProblem walks s and describes the first rule a strict schema
// breaks, "" if none.
func strictSchemaProblem(s map[string]any, path []string) string {
	ctx := "In context=(" + quotePath(path) + "), "
	if props, ok := s["properties"].(map[string]any); ok || s["type"] == "object" {
		if s["additionalProperties"] != false {
			return ctx + "'additionalProperties' is required to be supplied and to be false."
		}
		required := map[string]bool{}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if r, ok := r.(string); ok {
					required[r] = true
				}
			}
		}
		for _, n := range sortedKeys(props) {
			if !required[n] {
				return ctx + "'required' is required to be supplied and to be an array including every key in properties. Missing '" + n + "'."
			}
			if sub, ok := props[n].(map[string]any); ok {
				if msg := strictSchemaProblem(sub, append(path, "properties", n)); msg != "" {
					return msg
				}
			}
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		if msg := strictSchemaProblem(items, append(path, "items")); msg != "" {
			return msg
		}
	}
	for _, k := range []string{"anyOf", "$defs", "definitions"} {
		switch v := s[k].(type) {
		case []any:
			for i, sub := range v {
				if sub, ok := sub.(map[string]any); ok {
					if msg := strictSchemaProblem(sub, append(path, k, fmt.Sprint(i))); msg != "" {
						return msg
					}
				}
			}
		case map[string]any:
			for _, n := range sortedKeys(v) {
				if sub, ok := v[n].(map[string]any); ok {
					if msg := strictSchemaProblem(sub, append(path, k, n)); msg != "" {
						return msg
					}
				}
			}
		}
	}
	return ""
}

func quotePath(path []string) string {
	q := make([]string, len(path))
	for i, p := range path {
		q[i] = "'" + p + "'"
	}
	if len(q) == 1 {
		return q[0] + ","
	}
	return strings.Join(q, ", ")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// structuredReply is the model's answer under a json_schema format: a
// compact JSON document that conforms to schema, with every string field
// carrying text so tests see the user's words come back.
func structuredReply(schema map[string]any, text string) string {
	b, _ := json.Marshal(schemaValue(schema, schema, text, 0))
	return string(b)
}

// schemaValue builds one value for s; root resolves local $refs.
func schemaValue(s, root map[string]any, text string, depth int) any {
	if depth > 16 {
		return nil
	}
	if ref, ok := s["$ref"].(string); ok {
		if sub := resolveRef(root, ref); sub != nil {
			return schemaValue(sub, root, text, depth+1)
		}
		return nil
	}
	if c, ok := s["const"]; ok {
		return c
	}
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		if alts, ok := s[k].([]any); ok {
			for _, a := range alts {
				if am, ok := a.(map[string]any); ok && am["type"] != "null" {
					return schemaValue(am, root, text, depth+1)
				}
			}
			return nil
		}
	}
	typ, _ := s["type"].(string)
	if types, ok := s["type"].([]any); ok {
		for _, t := range types {
			if t, ok := t.(string); ok && t != "null" {
				typ = t
				break
			}
		}
	}
	if typ == "" && s["properties"] != nil {
		typ = "object"
	}
	switch typ {
	case "object":
		props, _ := s["properties"].(map[string]any)
		obj := make(map[string]any, len(props))
		for _, n := range sortedKeys(props) {
			sub, _ := props[n].(map[string]any)
			obj[n] = schemaValue(sub, root, text, depth+1)
		}
		return obj
	case "array":
		items, _ := s["items"].(map[string]any)
		return []any{schemaValue(items, root, text, depth+1)}
	case "string":
		return text
	case "integer", "number":
		if m, ok := s["minimum"].(float64); ok && m > 42 {
			return m
		}
		return 42
	case "boolean":
		return true
	}
	return nil
}

// resolveRef follows "#/$defs/x"-style references inside root.
func resolveRef(root map[string]any, ref string) map[string]any {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	cur := root
	for _, part := range strings.Split(ref[2:], "/") {
		next, ok := cur[part].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}
