package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// defaultParameters is the schema sent for a function declared without one:
// the backend wants an object schema.
var defaultParameters = json.RawMessage(`{"type":"object","properties":{}}`)

// rqFuncDef is a function declaration as chat clients send it, either nested
// under "function" or flat (Responses style, as Cursor does).
type rqFuncDef struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      json.RawMessage `json:"strict"`
}

// rqChatTool is one entry of the chat "tools" array.
type rqChatTool struct {
	Type     string     `json:"type"`
	Function *rqFuncDef `json:"function"`
	Custom   *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Format      json.RawMessage `json:"format"`
	} `json:"custom"`
	rqFuncDef
}

// rqFunctionTool is the flat Responses function tool.
type rqFunctionTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      bool            `json:"strict"`
}

// rqCustomTool is the Responses freeform (custom) tool.
type rqCustomTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Format      json.RawMessage `json:"format,omitempty"`
}

// toolKind distinguishes declared tools for tool_choice validation.
type toolKind uint8

const (
	kindFunction toolKind = iota + 1
	kindCustom
)

// chatTools is the converted tool list.
type chatTools struct {
	list     []json.RawMessage
	declared map[string]toolKind // client name → kind
	upstream map[string]string   // upstream name → client name, for collisions
	images   bool                // the hosted image_generation tool is declared
}

// declare registers a named tool, rejecting duplicates (also after
// shortening).
func (t *chatTools) declare(name, short string, kind toolKind, param string) *Error {
	if t.declared == nil {
		t.declared = make(map[string]toolKind)
		t.upstream = make(map[string]string)
	}
	if _, dup := t.declared[name]; dup {
		return InvalidRequest(param, codeInvalidValue, "duplicate tool name %q at '%s'; tool names must be unique", name, param)
	}
	if other, dup := t.upstream[short]; dup {
		return InvalidRequest(param, codeInvalidValue, "tool name %q at '%s' collides with %q after shortening to %d characters", name, param, other, MaxToolNameLen)
	}
	t.declared[name] = kind
	t.upstream[short] = name
	return nil
}

// convertChatTools maps chat "tools" and legacy "functions" to Responses
// tools.
func convertChatTools(toolsRaw, functionsRaw json.RawMessage, names *ToolNames) (chatTools, *Error) {
	var t chatTools
	if !isNullRaw(toolsRaw) {
		var raws []json.RawMessage
		if !forEachElement(toolsRaw, func(v []byte) bool { raws = append(raws, v); return true }) {
			raws = nil
			if err := decodeField(toolsRaw, &raws, "tools"); err != nil {
				return t, err
			}
		}
		for i, raw := range raws {
			if err := t.addChatTool(raw, "tools["+strconv.Itoa(i)+"]", names); err != nil {
				return t, err
			}
		}
	}
	if !isNullRaw(functionsRaw) {
		var fns []json.RawMessage
		if err := decodeField(functionsRaw, &fns, "functions"); err != nil {
			return t, err
		}
		for i, raw := range fns {
			param := fmt.Sprintf("functions[%d]", i)
			var fd rqFuncDef
			if err := decodeObjectField(raw, &fd, param); err != nil {
				return t, err
			}
			if err := t.addFunction(fd, param, names); err != nil {
				return t, err
			}
		}
	}
	return t, nil
}

// decodeObjectField decodes raw, which must be a JSON object, into v.
func decodeObjectField(raw json.RawMessage, v any, param string) *Error {
	if r := bytes.TrimSpace(raw); len(r) == 0 || r[0] != '{' {
		return InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected an object, got %s", param, rawKind(raw))
	}
	return decodeField(raw, v, param)
}

// addChatTool converts one chat tool.
func (t *chatTools) addChatTool(raw json.RawMessage, param string, names *ToolNames) *Error {
	var ct rqChatTool
	if r := bytes.TrimSpace(raw); len(r) == 0 || r[0] != '{' || !scanChatTool(r, &ct) {
		ct = rqChatTool{}
		if err := decodeObjectField(raw, &ct, param); err != nil {
			return err
		}
	}
	switch {
	case ct.Type == "function" || (ct.Type == "" && (ct.Function != nil || ct.Name != "")):
		fd, p := ct.rqFuncDef, param
		if ct.Function != nil {
			fd, p = *ct.Function, param+".function"
		}
		return t.addFunction(fd, p, names)
	case ct.Type == "custom":
		c := rqCustomTool{Type: "custom", Name: ct.Name, Description: ct.Description}
		if ct.Custom != nil {
			c.Name, c.Description, c.Format = ct.Custom.Name, ct.Custom.Description, ct.Custom.Format
		} else if f, err := parseRawObject(raw); err == nil {
			c.Format, _ = f.get("format")
		}
		if isNullRaw(c.Format) {
			c.Format = nil
		}
		if c.Name == "" {
			return InvalidRequest(param+".custom.name", codeMissingParam, "missing required parameter: '%s.custom.name'", param)
		}
		short := names.shorten(c.Name)
		if err := t.declare(c.Name, short, kindCustom, param); err != nil {
			return err
		}
		c.Name = short
		return t.appendTool(c, param)
	case ct.Type == "":
		return InvalidRequest(param+".type", codeMissingParam, "missing required parameter: '%s.type'", param)
	default:
		t.images = t.images || builtinToolType(ct.Type) == imageTool
		out, err := builtinTool(raw, ct.Type)
		if err != nil {
			return InvalidRequest(param, codeInvalidValue, "invalid tool at '%s': %s", param, err.Error())
		}
		t.list = append(t.list, out)
		return nil
	}
}

// addFunction appends a function tool.
func (t *chatTools) addFunction(fd rqFuncDef, param string, names *ToolNames) *Error {
	if fd.Name == "" {
		return InvalidRequest(param+".name", codeMissingParam, "missing required parameter: '%s.name'", param)
	}
	strict, _, err := boolParam(fd.Strict, param+".strict")
	if err != nil {
		return err
	}
	params := fd.Parameters
	if isNullRaw(params) {
		params = defaultParameters
	} else if r := bytes.TrimSpace(params); r[0] != '{' {
		return InvalidRequest(param+".parameters", codeInvalidType, "invalid type for '%s.parameters': expected an object, got %s", param, rawKind(r))
	}
	short := names.shorten(fd.Name)
	if err := t.declare(fd.Name, short, kindFunction, param); err != nil {
		return err
	}
	b, merr := appendFunctionTool(make([]byte, 0, 64+len(short)+len(fd.Description)+len(params)), &rqFunctionTool{Type: "function", Name: short, Description: fd.Description, Parameters: params, Strict: strict})
	if merr != nil {
		return InvalidRequest(param, codeInvalidValue, "invalid tool at '%s': %s", param, merr.Error())
	}
	t.list = append(t.list, b)
	return nil
}

// appendTool marshals and appends a converted tool.
func (t *chatTools) appendTool(v any, param string) *Error {
	b, err := marshalCompact(v)
	if err != nil {
		return InvalidRequest(param, codeInvalidValue, "invalid tool at '%s': %s", param, err.Error())
	}
	t.list = append(t.list, b)
	return nil
}

// builtinToolType maps retired built-in tool names to the current ones:
// web_search_preview and its dated variants are plain web_search upstream.
func builtinToolType(typ string) string {
	if strings.HasPrefix(typ, "web_search_preview") {
		return "web_search"
	}
	return typ
}

// imageTool is the type of the hosted tool that makes images.
const imageTool = "image_generation"

// builtinTool passes a non-function tool through, renaming its type when
// builtinToolType says so.
func builtinTool(raw json.RawMessage, typ string) (json.RawMessage, error) {
	if nt := builtinToolType(typ); nt != typ {
		o, err := parseRawObject(raw)
		if err != nil {
			return nil, err
		}
		o.set("type", quoteJSON(nt))
		return o.marshal(), nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// rqToolChoiceFunc is the Responses function/custom tool_choice object.
type rqToolChoiceFunc struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// convertToolChoice maps chat tool_choice (or the legacy function_call
// parameter) to the Responses form. It returns nil when nothing is to be
// sent; dropped reports a choice that was ignored because there are no
// tools.
func convertToolChoice(raw, legacy json.RawMessage, t chatTools, names *ToolNames) (out json.RawMessage, dropped string, e *Error) {
	param := "tool_choice"
	if isNullRaw(raw) {
		if isNullRaw(legacy) {
			if len(t.list) > 0 {
				return json.RawMessage(`"auto"`), "", nil
			}
			return nil, "", nil
		}
		raw, param = legacy, "function_call"
	}
	r := bytes.TrimSpace(raw)
	if r[0] == '"' {
		var s string
		_ = json.Unmarshal(r, &s)
		switch s {
		case "none", "auto":
			if len(t.list) == 0 {
				return nil, param, nil
			}
		case "required":
			if param == "function_call" {
				return nil, "", InvalidRequest(param, codeInvalidValue, "invalid value for 'function_call': %q; supported values are none, auto or {\"name\": ...}", s)
			}
		default:
			return nil, "", InvalidRequest(param, codeInvalidValue, "invalid value for '%s': %q; supported values are none, auto, required or a tool object", param, s)
		}
		if len(t.list) == 0 {
			return nil, "", InvalidRequest(param, codeInvalidValue, "'%s' is %q but no tools were declared", param, s)
		}
		return quoteJSON(s), "", nil
	}
	if r[0] != '{' {
		return nil, "", InvalidRequest(param, codeInvalidType, "invalid type for '%s': expected a string or an object, got %s", param, rawKind(r))
	}
	var tc struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Function *struct {
			Name string `json:"name"`
		} `json:"function"`
		Custom *struct {
			Name string `json:"name"`
		} `json:"custom"`
	}
	if err := decodeField(r, &tc, param); err != nil {
		return nil, "", err
	}
	if param == "function_call" {
		tc.Type = "function" // legacy form is {"name": X}
	}
	if len(t.list) == 0 {
		return nil, "", InvalidRequest(param, codeInvalidValue, "'%s' names a tool but no tools were declared", param)
	}
	var kind toolKind
	switch tc.Type {
	case "function":
		kind = kindFunction
		if tc.Function != nil {
			tc.Name = tc.Function.Name
		}
	case "custom":
		kind = kindCustom
		if tc.Custom != nil {
			tc.Name = tc.Custom.Name
		}
	case "":
		return nil, "", InvalidRequest(param+".type", codeMissingParam, "missing required parameter: '%s.type'", param)
	default:
		b, err := builtinTool(r, tc.Type)
		if err != nil {
			return nil, "", InvalidRequest(param, codeInvalidValue, "invalid '%s': %s", param, err.Error())
		}
		return b, "", nil
	}
	if tc.Name == "" {
		return nil, "", InvalidRequest(param, codeMissingParam, "'%s' must name a tool", param)
	}
	if t.declared[tc.Name] != kind {
		return nil, "", InvalidRequest(param, codeInvalidValue, "'%s' names %s tool %q, which is not declared in tools", param, tc.Type, tc.Name)
	}
	b, _ := marshalCompact(rqToolChoiceFunc{Type: tc.Type, Name: names.shorten(tc.Name)})
	return b, "", nil
}
