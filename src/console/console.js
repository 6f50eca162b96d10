"use strict";
// One console for `drbot sandbox` (mode "sandbox": personas, the emulator's panel) and for
// `drbot serve` behind the load balancer's sign-in (mode "serve": you are who signed in).
const EMOJI={white_check_mark:"✅",x:"❌","+1":"👍",rotating_light:"🚨",warning:"⚠️",no_entry:"⛔",hourglass_flowing_sand:"⏳",lock:"🔒",unlock:"🔓",bell:"🔔",loudspeaker:"📢",bar_chart:"📊",wastebasket:"🗑️",calendar:"📅",heavy_check_mark:"✔️",white_circle:"⚪",large_green_circle:"🟢",red_circle:"🔴",arrows_counterclockwise:"🔄",mag:"🔍",memo:"📝",fire:"🔥",shield:"🛡️",rocket:"🚀",clock3:"🕒",ballot_box_with_check:"☑️",black_square_button:"🔲",information_source:"ℹ️",tada:"🎉",grey_question:"❔"};
// The sandbox serves the console at "/", `serve` at "/console" and "/console/".
const BASE=location.pathname.startsWith("/console")?"/console/":"/";
let state={channels:[],messages:[],people:[],scenarios:[]},current="",persona="",lastDraw="",mode="";
// Answers to what you typed here (serve): shown in the channel, only to you.
const answers=[];
const $=s=>document.querySelector(s);
function esc(s){return String(s).replace(/&/g,"&amp;").replace(/</g,"&lt;").replace(/>/g,"&gt;").replace(/"/g,"&quot;")}
function name(u){const p=state.people.find(p=>p.id===u);return p?p.name:(u===state.bot?"drbot":u)}
function chan(c){const x=state.channels.find(x=>x.id===c);return x?x.name:c}
function serving(){return mode==="serve"}
// Slack mrkdwn as Slack renders it; the text arrives escaped (&lt; &gt; &amp;) like Slack's.
function mrkdwn(t){
  const blocks=[];t=String(t||"");
  t=t.replace(/```([\s\S]*?)```/g,(m,c)=>{blocks.push("<pre>"+c+"</pre>");return "\u0000"+(blocks.length-1)+"\u0000"});
  t=t.replace(/<(?!@|#|!|https?:)/g,"&lt;").replace(/"/g,"&quot;");
  t=t.replace(/`([^`\n]+)`/g,(m,c)=>{blocks.push("<code>"+c+"</code>");return "\u0000"+(blocks.length-1)+"\u0000"});
  t=t.replace(/<@([UW][A-Z0-9]+)>/g,(m,u)=>'<span class="mention">@'+esc(name(u))+"</span>");
  t=t.replace(/<#([CGD][A-Z0-9]+)(\|[^>]*)?>/g,(m,c)=>'<span class="mention">#'+esc(chan(c))+"</span>");
  t=t.replace(/<!(here|channel|everyone)>/g,'<span class="mention">@$1</span>');
  t=t.replace(/<(https?:[^|>]+)\|([^>]+)>/g,'$2').replace(/<(https?:[^>]+)>/g,'$1');
  t=t.replace(/(^|[\s(])\*([^*\n]+)\*/g,"$1<b>$2</b>").replace(/(^|[\s(])_([^_\n]+)_/g,"$1<i>$2</i>").replace(/(^|[\s(])~([^~\n]+)~/g,"$1<s>$2</s>");
  t=t.replace(/:([a-z0-9_+\-]+):/g,(m,e)=>EMOJI[e]||m);
  return t.replace(/\u0000(\d+)\u0000/g,(m,i)=>blocks[+i]);
}
function buttons(m){
  const out=[];for(const b of (Array.isArray(m.blocks)?m.blocks:[])){if(b.type!=="actions")continue;
    for(const e of b.elements||[]){if(e.type!=="button")continue;
      out.push('<button class="'+esc(e.style||"")+'" data-action="'+esc(e.action_id)+'" data-value="'+esc(e.value||"")+'" data-ts="'+esc(m.ts)+'" data-request="'+esc(m.request==null?"":m.request)+'">'+esc(e.text&&e.text.text||e.action_id)+"</button>")}}
  return out.length?'<div class="buttons">'+out.join("")+"</div>":"";
}
function when(m){const d=m.at?new Date(m.at):new Date(parseFloat(m.ts)*1000);return isNaN(d)?"":d.toLocaleTimeString()}
function one(m){
  const mine=r=>r.includes(persona)?" mine":"";
  const reacts=Object.entries(m.reactions||{}).map(([n,who])=>'<span class="reaction'+mine(who)+'" data-ts="'+esc(m.ts)+'" data-name="'+esc(n)+'" title="'+esc(who.map(name).join(", "))+'">'+(EMOJI[n]||":"+esc(n)+":")+" "+who.length+"</span>").join("");
  const add=serving()||m.only_for?"":'<span class="addr" data-ts="'+esc(m.ts)+'" data-name="white_check_mark">+✅</span><span class="addr" data-ts="'+esc(m.ts)+'" data-name="x">+❌</span>';
  const file=m.file?'<div class="file">📄 <a href="'+BASE+"files/"+esc(m.file.id)+'" target="_blank">'+esc(m.file.title||m.file.name)+"</a></div>":"";
  const flags=(m.queued?'<span class="queued">⏳ waiting for Slack</span>':"")+(m.failed?'<span class="failed">not delivered to Slack</span>':"");
  return '<div class="msg'+(m.only_for?" ephemeral":"")+'" data-ts="'+esc(m.ts)+'"><span class="who">'+esc(name(m.user))+'</span><span class="when">'+when(m)+(m.edited?" (edited)":"")+"</span>"+flags+(m.pinned?' <span class="pin">📌 pinned</span>':"")+(m.only_for?' <span class="only">only visible to you</span>':"")+'<div class="text">'+mrkdwn(m.text)+"</div>"+file+buttons(m)+'<div class="reactions">'+reacts+add+"</div></div>";
}
// drbot's App Home as Slack draws a published view's blocks.
function homeView(v){
  if(!v)return '<div class="msg"><i>Opening drbot\'s Home…</i></div>';
  return '<div class="home">'+(v.blocks||[]).map(b=>{
    if(b.type==="header")return "<h3>"+esc(b.text&&b.text.text||"")+"</h3>";
    if(b.type==="divider")return "<hr>";
    if(b.type==="section")return '<div class="text">'+mrkdwn(b.text&&b.text.text||"")+"</div>";
    if(b.type==="context")return '<div class="only">'+(b.elements||[]).map(e=>e.type==="plain_text"?esc(e.text):mrkdwn(e.text)).join(" ")+"</div>";
    if(b.type==="actions")return buttons({blocks:[b],ts:""});
    return "";}).join("")+"</div>";
}
function channelList(){
  return '<a data-c="HOME" class="'+(current==="HOME"?"active":"")+'">⌂ drbot Home</a>'+state.channels.map(c=>'<a data-c="'+esc(c.id)+'" class="'+(c.id===current?"active":"")+'">'+(c.kind==="dm"?"✉ ":"# ")+esc(c.name)+"</a>").join("");
}
function draw(){
  $("#channels").innerHTML=channelList();
  if(current==="HOME"){$("#title").textContent="drbot · Home  ·  you are "+name(persona);const html=homeView(state.home);if(html!==lastDraw){$("#messages").innerHTML=html;lastDraw=html}return}
  $("#scenarios").innerHTML=(state.scenarios||[]).map(s=>'<button data-s="'+esc(s.id)+'" title="'+esc(s.title)+'">▶ '+esc(s.id)+"</button>").join("");
  const incidents=state.channels.filter(c=>c.name.startsWith("inc-"));
  $("#links").innerHTML='<a href="'+BASE+'report.html" target="_blank">DR review (this quarter)</a>'+incidents.map(c=>'<a href="'+BASE+"exports/"+esc(c.name)+'.html" target="_blank">timeline '+esc(c.name)+"</a>").join("");
  $("#title").textContent=(chan(current).startsWith("drbot")?"":"#")+chan(current)+"  ·  you are "+name(persona);
  const here=state.messages.filter(m=>m.channel===current).concat(answers.filter(a=>a.channel===current));
  if(serving())here.sort((a,b)=>String(a.at||"").localeCompare(String(b.at||"")));
  const top=here.filter(m=>!m.thread_ts||m.thread_ts===m.ts);
  const html=top.map(m=>one(m)+'<div class="thread">'+here.filter(r=>r.thread_ts===m.ts&&r.ts!==m.ts).map(one).join("")+"</div>").join("");
  if(html!==lastDraw){const box=$("#messages"),end=box.scrollTop+box.clientHeight>=box.scrollHeight-30;box.innerHTML=html;lastDraw=html;if(end)box.scrollTop=box.scrollHeight}
}
function slackPanel(){
  const s=state.slack||{};const b=$("#banner");
  if(s.down){b.hidden=false;b.className="banner";b.textContent="Slack is down since "+new Date(s.since).toLocaleTimeString()+" — "+s.waiting+" message(s) wait in drbot's outbox and will be posted in order when Slack answers. Work here: it is the same gate and the same record."}
  else{b.hidden=true}
  $("#slack").textContent=s.down?"not answering since "+s.since+"; "+s.waiting+" message(s) waiting":"answering; "+(s.waiting||0)+" message(s) waiting";
}
async function refresh(){
  try{const r=await fetch(BASE+"api/state?as="+encodeURIComponent(persona)+"&channel="+encodeURIComponent(current));
    if(!r.ok){$("#messages").textContent=await r.text();return}
    state=await r.json();
    if(!mode){mode=state.mode;setUp()}
    draw();if(serving())slackPanel()}catch(e){}
}
function setUp(){
  if(serving()){
    persona=state.you.id;current=current||(state.channels[0]&&state.channels[0].id)||"HOME";
    $("#brand").textContent="drbot console";$("#tagline").textContent="the same commands, gate and record as in Slack";
    $("#you").hidden=false;$("#you").textContent="signed in as "+state.you.email+" ("+state.you.name+")";
    $("#persona").hidden=true;$("#serve-panels").hidden=false;
  }else{
    persona=persona||state.people[0].id;current=current||"C0123OPS";
    $("#brand").textContent="drbot sandbox";$("#tagline").textContent="real drbot · moto as AWS · this page as Slack";
    $("#persona").innerHTML=state.people.map(p=>'<option value="'+esc(p.id)+'">'+esc(p.name+" — "+p.role)+"</option>").join("");
    $("#tabletop").hidden=false;$("#sandbox-panels").hidden=false;
    aws();users();setInterval(aws,3000);setInterval(users,2000);
  }
  lastDraw="";
}
async function aws(){
  try{const a=await (await fetch(BASE+"api/aws")).json();let h="";
    const table=(t,rows)=>"<h2>"+t+"</h2><table>"+rows.map(r=>"<tr>"+r.map(c=>"<td>"+esc(c)+"</td>").join("")+"</tr>").join("")+"</table>";
    h+=table("ECS services",a.services.map(s=>[s.name+" ("+s.region+")",s.task_definition,"running "+s.running+"/"+s.desired]));
    h+=table("WAF IP sets",a.ip_sets.map(s=>[s.name,s.addresses.length?s.addresses.join(", "):"(empty)"]));
    h+=table("Web ACL rules",a.web_acl.map(r=>[r]));
    h+=table("DB instances",a.instances.map(i=>[i.id+" ("+i.region+")",i.status]));
    h+=table("Snapshots",a.snapshots.map(s=>[s.id+" ("+s.region+")",s.kind,s.created]));
    h+=table("DNS",[[a.dns.record,a.dns.target]]);
    h+=table("SSM",[[a.parameter.name,a.parameter.value]]);
    $("#aws").innerHTML=h;$("#aws-when").textContent=new Date().toLocaleTimeString()}catch(e){$("#aws").textContent="AWS not answering"}
}
async function users(){
  try{const n=await (await fetch(BASE+"api/notices")).json();
    $("#page").innerHTML=n.page.length?n.page.map(i=>"<div class=\"notice\"><b>"+esc(i.name)+"</b> — "+esc(i.status)+" · impact "+esc(i.impact)+"<br><small>"+esc(i.components.join(", "))+"</small><details><summary>"+i.updates.length+" update(s), newest first</summary>"+i.updates.map(u=>"<pre>"+esc(u.status+" · "+u.at+"\n"+u.body)+"</pre>").join("")+"</details></div>").join(""):"nothing published";
    $("#mail").innerHTML=n.mail.length?n.mail.slice().reverse().map(m=>"<div class=\"notice\"><details><summary><b>"+esc(m.subject)+"</b> · Bcc: "+esc(m.bcc.join(", "))+"</summary><small>"+esc(m.message_id+" · "+m.at)+"</small><pre>"+esc(m.body)+"</pre></details></div>").join(""):"no email sent"}catch(e){}
}
function nonce(){const a=new Uint8Array(16);crypto.getRandomValues(a);return Array.from(a,b=>b.toString(16).padStart(2,"0")).join("")}
async function post(path,body){
  const headers={"content-type":"application/json"};if(state.csrf)headers["x-drbot-csrf"]=state.csrf;
  const r=await fetch(BASE+path,{method:"POST",headers,body:JSON.stringify(Object.assign({nonce:nonce()},body))});
  let answer;try{answer=await r.json()}catch(e){answer={ok:false,error:"HTTP "+r.status}}
  if(serving()&&(answer.answer||answer.error))answers.push({channel:current==="HOME"?"":current,ts:"a"+answers.length,at:new Date().toISOString(),user:state.bot,text:answer.answer||(":no_entry: "+answer.error),only_for:persona,reactions:{}});
  if(serving()&&current==="HOME"&&(answer.answer||answer.error))alert(answer.answer||answer.error);
  return answer;
}
$("#composer").addEventListener("submit",async e=>{e.preventDefault();const t=$("#text").value.trim();if(!t||current==="HOME")return;$("#text").value="";await post("api/command",{as:persona,channel:current,text:t});refresh()});
$("#persona").addEventListener("change",async e=>{persona=e.target.value;lastDraw="";if(current==="HOME")await post("api/home",{as:persona});refresh()});
document.addEventListener("click",async e=>{
  const t=e.target.closest("[data-c],[data-s],.reaction,.addr,[data-action]");if(!t)return;
  if(t.dataset.c){current=t.dataset.c;lastDraw="";if(current==="HOME"&&!serving())await post("api/home",{as:persona});refresh();return}
  if(t.dataset.s){await post("api/command",{as:persona,channel:"C0123OPS",text:"/dr incident open "+t.dataset.s+" Tabletop exercise --drill"});refresh();return}
  if(t.dataset.action){t.disabled=true;await post("api/click",{as:persona,channel:current,ts:t.dataset.ts,action_id:t.dataset.action,value:t.dataset.value,request:t.dataset.request?Number(t.dataset.request):null});refresh();return}
  if(serving())return;
  const m=state.messages.find(m=>m.channel===current&&m.ts===t.dataset.ts);const mine=m&&(m.reactions[t.dataset.name]||[]).includes(persona);
  await post("api/react",{as:persona,channel:current,ts:t.dataset.ts,name:t.dataset.name,add:!mine});refresh();
});
refresh();setInterval(refresh,1000);
