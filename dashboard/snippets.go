package dashboard

import (
	"encoding/json"
	"strconv"
	"strings"
)

// codeBlock is a snippet for the "codeblock" template.
type codeBlock struct {
	ID, Lang, Text string
}

// snippetLangs label each snippet's code bar.
var snippetLangs = map[string]string{
	"curl": "Shell", "python": "Python", "node": "JavaScript", "codex": "config.toml",
	"codexenv": "Shell", "continue": "config.yaml", "claudecode": "Shell",
}

// snippet renders the setup snippet called name for st.
func snippet(name string, st setup) codeBlock {
	q := strconv.Quote // Go quoting is valid for Python, JS and TOML basic strings of these values
	var t string
	switch name {
	case "curl":
		type msg struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		}
		body, _ := json.Marshal(struct {
			Model    string `json:"model"`
			Messages []msg  `json:"messages"`
		}{st.Model, []msg{{"user", "Say hello"}}})
		t = "curl " + st.BaseURL + "/chat/completions \\\n" +
			"  -H \"Authorization: Bearer " + st.Key + "\" \\\n" +
			"  -H \"Content-Type: application/json\" \\\n" +
			"  -d '" + string(body) + "'"
	case "python":
		t = "from openai import OpenAI\n\n" +
			"client = OpenAI(\n" +
			"    base_url=" + q(st.BaseURL) + ",\n" +
			"    api_key=" + q(st.Key) + ",\n" +
			")\n" +
			"reply = client.chat.completions.create(\n" +
			"    model=" + q(st.Model) + ",\n" +
			"    messages=[{\"role\": \"user\", \"content\": \"Say hello\"}],\n" +
			")\n" +
			"print(reply.choices[0].message.content)"
	case "node":
		t = "import OpenAI from \"openai\";\n\n" +
			"const client = new OpenAI({\n" +
			"  baseURL: " + q(st.BaseURL) + ",\n" +
			"  apiKey: " + q(st.Key) + ",\n" +
			"});\n" +
			"const reply = await client.chat.completions.create({\n" +
			"  model: " + q(st.Model) + ",\n" +
			"  messages: [{ role: \"user\", content: \"Say hello\" }],\n" +
			"});\n" +
			"console.log(reply.choices[0].message.content);"
	case "codex":
		id := strings.ToLower(strings.TrimSuffix(st.EnvVar, "_API_KEY"))
		t = "model = " + q(st.Model) + "\n" +
			"model_provider = " + q(id) + "\n\n" +
			"[model_providers." + id + "]\n" +
			"name = " + q(st.Site) + "\n" +
			"base_url = " + q(st.BaseURL) + "\n" +
			"env_key = " + q(st.EnvVar) + "\n" +
			"wire_api = \"responses\""
	case "codexenv":
		t = "export " + st.EnvVar + "=" + st.Key
	case "claudecode":
		// Claude Code and the Anthropic SDKs take the site's origin (they
		// add /v1/messages themselves) and a cpk_ key as the API key;
		// their Claude model names are mapped to Codex models.
		t = "export ANTHROPIC_BASE_URL=" + strings.TrimSuffix(st.BaseURL, "/v1") + "\n" +
			"export ANTHROPIC_API_KEY=" + st.Key + "\n" +
			"claude"
	case "continue":
		t = "models:\n" +
			"  - name: " + st.Model + " (" + st.Site + ")\n" +
			"    provider: openai\n" +
			"    model: " + st.Model + "\n" +
			"    apiBase: " + st.BaseURL + "\n" +
			"    apiKey: " + st.Key + "\n" +
			"    roles: [chat, edit, apply]"
	}
	return codeBlock{ID: "snippet-" + name, Lang: snippetLangs[name], Text: t}
}
