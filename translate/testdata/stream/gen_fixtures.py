import json, sys
seq=[0]
def ev(t, crlf=False, noname=False, **kw):
    d={"type":t}; d.update(kw); d["sequence_number"]=seq[0]; seq[0]+=1
    nl="\r\n" if crlf else "\n"
    s="" if noname else f"event: {t}{nl}"
    return s+"data: "+json.dumps(d,separators=(",",":"),ensure_ascii=False)+nl+nl
def created(rid, model="gpt-5.5"):
    return [ev("response.created",response={"id":rid,"object":"response","status":"in_progress","model":model,"output":[]}),
            ev("response.in_progress",response={"id":rid,"object":"response","status":"in_progress","model":model,"output":[]})]
def usage(i=120,c=64,o=40,r=28):
    return {"input_tokens":i,"input_tokens_details":{"cached_tokens":c},"output_tokens":o,"output_tokens_details":{"reasoning_tokens":r},"total_tokens":i+o}
def completed(rid, output=None, u=None, model="gpt-5.5"):
    return ev("response.completed",response={"id":rid,"object":"response","status":"completed","model":model,"output":output or [],"usage":u or usage()})
def message(idx, mid, parts, crlf=False):
    out=[ev("response.output_item.added",crlf,output_index=idx,item={"id":mid,"type":"message","role":"assistant","status":"in_progress","content":[]}),
         ev("response.content_part.added",crlf,item_id=mid,output_index=idx,content_index=0,part={"type":"output_text","text":"","annotations":[]})]
    for p in parts:
        out.append(ev("response.output_text.delta",crlf,item_id=mid,output_index=idx,content_index=0,delta=p,logprobs=[]))
    text="".join(parts)
    out+= [ev("response.output_text.done",crlf,item_id=mid,output_index=idx,content_index=0,text=text),
           ev("response.content_part.done",crlf,item_id=mid,output_index=idx,content_index=0,part={"type":"output_text","text":text,"annotations":[]}),
           ev("response.output_item.done",crlf,output_index=idx,item={"id":mid,"type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","text":text,"annotations":[]}]})]
    return out
def reasoning(idx, rid, summaries):
    out=[ev("response.output_item.added",output_index=idx,item={"id":rid,"type":"reasoning","summary":[]})]
    for si,parts in enumerate(summaries):
        out.append(ev("response.reasoning_summary_part.added",item_id=rid,output_index=idx,summary_index=si,part={"type":"summary_text","text":""}))
        for p in parts:
            out.append(ev("response.reasoning_summary_text.delta",item_id=rid,output_index=idx,summary_index=si,delta=p))
        out.append(ev("response.reasoning_summary_text.done",item_id=rid,output_index=idx,summary_index=si,text="".join(parts)))
        out.append(ev("response.reasoning_summary_part.done",item_id=rid,output_index=idx,summary_index=si,part={"type":"summary_text","text":"".join(parts)}))
    out.append(ev("response.output_item.done",output_index=idx,item={"id":rid,"type":"reasoning","summary":[{"type":"summary_text","text":"".join(p)} for p in summaries],"encrypted_content":"gAAAAABencrypted=="}))
    return out
def call(idx, fid, cid, name, parts, stream_args=True):
    args="".join(parts)
    out=[ev("response.output_item.added",output_index=idx,item={"id":fid,"type":"function_call","status":"in_progress","arguments":"","call_id":cid,"name":name})]
    if stream_args:
        for p in parts:
            out.append(ev("response.function_call_arguments.delta",item_id=fid,output_index=idx,delta=p))
    out.append(ev("response.function_call_arguments.done",item_id=fid,output_index=idx,arguments=args))
    out.append(ev("response.output_item.done",output_index=idx,item={"id":fid,"type":"function_call","status":"completed","arguments":args,"call_id":cid,"name":name}))
    return out
def write(name, evs):
    seq[0]=0
    open(name+".sse","w",newline="").write("".join(evs))

def build(name, f):
    seq[0]=0
    open(name+".sse","w",newline="").write("".join(f()))

build("text", lambda: created("resp_text")+message(0,"msg_1",["Hello",", ","world","! \"quoted\" \\ back","slash é ✓ \u2028 line"])+[completed("resp_text")])
build("reasoning_text", lambda: created("resp_rt")+reasoning(0,"rs_1",[["**Answering","** greeting"],["Second thought"]])+message(1,"msg_1",["Hi"," there."])+[completed("resp_rt")])
build("tool_call", lambda: created("resp_tc")+call(0,"fc_1","call_abc","read_file",['{"path":','"a.txt"}'])+[completed("resp_tc",u=usage(300,0,20,0))])
build("parallel_tool_calls", lambda: created("resp_ptc")+call(0,"fc_1","call_1","get_weather",['{"city":','"Paris"}'])+call(1,"fc_2","call_2","get_weather",['{"city":"Ber','lin"}'])+call(2,"fc_3","call_3","get_time",['{"tz":"CET"}'])+[completed("resp_ptc")])
build("reasoning_tool_call", lambda: created("resp_rtc")+reasoning(0,"rs_2",[["Need to read the file."]])+message(1,"msg_2",["Let me look."])+call(2,"fc_1","call_xyz","mcp__filesystem__read_file_1a2b3c4d",['{"path":"/etc/hosts"}'])+[completed("resp_rtc")])
build("image_input", lambda: created("resp_img")+message(0,"msg_1",["The image shows ","a red square."])+[completed("resp_img",u=usage(900,0,12,0))])
build("json_schema", lambda: created("resp_js")+message(0,"msg_1",['{"name":','"Ada","age":','36}'])+[completed("resp_js")])
build("failure_midstream", lambda: created("resp_fail")+message(0,"msg_1",["Partial "])[:3]+[ev("response.failed",response={"id":"resp_fail","object":"response","status":"failed","error":{"code":"rate_limit_exceeded","message":"Rate limit reached for gpt-5.5. Please try again in 11.054s."}})])
build("error_event", lambda: created("resp_err")+[ev("error",code="server_is_overloaded",message="Our servers are currently overloaded. Please try again later.",param=None)])
build("incomplete", lambda: created("resp_inc")+message(0,"msg_1",["This answer is cut"])+[ev("response.incomplete",response={"id":"resp_inc","object":"response","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[],"usage":usage(50,0,16,0)})])
build("cut_stream", lambda: created("resp_cut")+message(0,"msg_1",["Half an ans","wer"])[:4])
build("done_only_call", lambda: created("resp_doc")+[ev("response.output_item.done",output_index=0,item={"id":"fc_9","type":"function_call","status":"completed","arguments":"{\"q\":\"x\"}","call_id":"call_9","name":"search"})]+[completed("resp_doc")])
def completed_with_output():
    return created("resp_full")+[ev("response.output_item.done",output_index=0,item={"id":"msg_1","type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","text":"Only in done.","annotations":[]}]}),
        completed("resp_full",output=[{"id":"msg_1","type":"message","role":"assistant","status":"completed","content":[{"type":"output_text","text":"Only in done.","annotations":[]}]}])]
build("text_only_in_done", completed_with_output)
def crlf():
    return [e.replace("\n","\r\n") for e in created("resp_crlf")+message(0,"msg_1",["CR","LF"," framing"])+[completed("resp_crlf")]]
build("crlf", crlf)
def noise():
    evs=created("resp_noise")+message(0,"msg_1",["keep","alive"])+[completed("resp_noise")]
    out=[": keepalive\n\n"]
    for e in evs:
        out.append(e.split("\n",1)[1] if e.startswith("event:") else e)  # no event: lines
        out.append(": ping\n\n")
    out.append(ev("codex.rate_limits",rate_limits={"primary":{"used_percent":5}}))
    return out
build("comments_no_event_names", noise)
# A call whose id the request mapping shortened (translate/callids.go), as
# the upstream would echo it: the client must only ever see its long id.
import hashlib
LONG_CALL_ID="tooluse_"+"Ab3-"*20
SHORT_CALL_ID="call_sh_"+hashlib.sha256(LONG_CALL_ID.encode()).hexdigest()[:40]
def long_call_id():
    item={"id":"fc_7","type":"function_call","status":"completed","arguments":"{\"q\":\"x\"}","call_id":SHORT_CALL_ID,"name":"search"}
    return created("resp_lid")+call(0,"fc_7",SHORT_CALL_ID,"search",['{"q":','"x"}'])+[completed("resp_lid",output=[item])]
build("long_call_id", long_call_id)
