import{r as e}from"./rolldown-runtime-BLXQ4ufn.js";import{i as t,n,t as r}from"./jsx-runtime-CMDJxtJp.js";import{n as i}from"./dist-CFLpQDq_.js";var a=e(t(),1),o=n(),s=`billing-gateway.api-key`;function c(){let e=new URLSearchParams(location.hash.slice(1)).get(`key`);return e?(sessionStorage.setItem(s,e),history.replaceState(null,``,location.pathname+location.search),e):sessionStorage.getItem(s)}function l(e){sessionStorage.setItem(s,e)}function u(){sessionStorage.removeItem(s)}var d=class extends Error{};async function f(e,t,n={},r){let i=await fetch(`/graphql`,{method:`POST`,headers:{"Content-Type":`application/json`,Accept:`application/graphql-response+json, application/json`,Authorization:`Bearer ${e}`},body:JSON.stringify({query:t,variables:n,operationName:r})}),a;try{a=await i.json()}catch{throw new d(`The gateway answered ${i.status} without JSON.`)}if(a.errors?.length)throw new d(a.errors.map(e=>e.message).join(`; `));return a.data}var p=null;function m(e,t,n){p?.dispose();let r=`${location.protocol===`https:`?`wss`:`ws`}://${location.host}/graphql`;return p=i({url:r,connectionParams:{authorization:`Bearer ${e}`},lazy:!1,retryAttempts:5}),p.subscribe({query:t},{next:e=>e.data&&n(Object.values(e.data)[0]),error:()=>void 0,complete:()=>void 0})}var h=`# Checkout → billing details: save what the customer typed. Fields left out keep their value;
# \`missingFields\` lists what checkout still needs. Invalid input (an unknown country, a VAT ID
# that fails its checksum) answers InvalidBillingDetails with a problem per field, and saves
# nothing.

mutation UpdateBillingDetails($input: UpdateBillingDetailsInput!) {
  updateBillingDetails(input: $input) {
    __typename
    ... on BillingDetails {
      customerType
      name
      companyName
      addressLine1
      addressLine2
      city
      postalCode
      region
      country
      vatId
      vatIdVerification
      email
      missingFields
    }
    ... on InvalidBillingDetails {
      problems {
        field
        message
      }
    }
    ... on UserError {
      code
      message
      field
    }
  }
}
`,g=`# The Billing page as it opens, in one request: the widget and Billing → Overview (the
# workspace), Select a Plan (the plans) and the Message Calculator's message types and
# destinations (with the types each country offers).

query BillingPage {
  workspace {
    __typename
    ... on Workspace {
      ...BillingOverviewFields
    }
    ... on UserError {
      code
      message
    }
  }
  plans {
    ...PlanCard
  }
  messageTypes {
    code
    name
    channel
    creditKind
    segmented
  }
  destinations {
    country
    name
    messageTypes {
      code
    }
  }
}
`,_=`# Checkout Now and 3-D Secure. Checkout sends the Order Preview's token: it buys exactly what
# the preview showed, or answers QuoteChanged with the new preview (its price changed or it
# expired). Every outcome is data: success, a payment waiting for 3-D Secure or for its money,
# a decline, too little balance, or a typed problem with the input.

mutation CheckoutNow($input: CheckoutInput!) {
  checkout(input: $input) {
    __typename
    ... on CheckoutSuccess {
      ...CheckoutDone
    }
    ... on PaymentActionRequired {
      paymentId
      nextAction
      expiresAt
    }
    ... on PaymentPending {
      paymentId
      reference
    }
    ... on PaymentDeclined {
      paymentId
      declineCode
    }
    ... on InsufficientBalance {
      balance {
        ...MoneyFields
      }
      required {
        ...MoneyFields
      }
      shortfall {
        ...MoneyFields
      }
    }
    ... on QuoteChanged {
      quote {
        ...OrderPreviewFields
      }
    }
    ... on BillingDetailsIncomplete {
      missingFields
    }
    ... on UserError {
      code
      message
      field
    }
  }
}

# The customer's answer to the card's 3-D Secure challenge finishes the payment.
mutation ConfirmPayment($paymentId: ID!, $challengeResponse: String) {
  confirmPayment(paymentId: $paymentId, challengeResponse: $challengeResponse) {
    __typename
    ... on CheckoutSuccess {
      ...CheckoutDone
    }
    ... on TopUpSuccess {
      balance {
        ...MoneyFields
      }
    }
    ... on PaymentDeclined {
      declineCode
    }
    ... on UserError {
      code
      message
    }
  }
}

fragment CheckoutDone on CheckoutSuccess {
  kind
  workspace {
    ...BillingOverviewFields
  }
  invoice {
    id
    number
    pdfUrl
  }
  payment {
    id
    method
    status
    amount {
      ...MoneyFields
    }
  }
}
`,v=`# The Custom plan's Request a quote: recorded for the sales team, whose address comes back.

mutation RequestQuote($input: RequestCustomQuoteInput!) {
  requestCustomQuote(input: $input) {
    __typename
    ... on CustomQuoteRequested {
      requestId
      salesContact
    }
    ... on UserError {
      code
      message
      field
    }
  }
}
`,y=`# Customize Plan: where the sliders start, the Order Preview re-priced on every slider move,
# and the Message Calculator. All three are queries (they write nothing), so a client cache can
# keep their answers; the same fields exist as mutations for older clients.

query CustomizePlan($planCode: String!) {
  selectPlan(planCode: $planCode) {
    __typename
    ... on PlanSelection {
      plan {
        code
        name
      }
      adjustable
      requiresQuote
      salesContact
      emailCredits
      messagingCredits
      change
      effectiveAt
    }
    ... on UserError {
      code
      message
    }
  }
}

# Priced with the saved billing details (VAT), as checkout will price it.
query OrderPreview($input: QuoteInput!) {
  quote(input: $input) {
    __typename
    ... on Quote {
      ...OrderPreviewFields
    }
    ... on UserError {
      code
      message
      field
    }
  }
}

query MessageCalculator($input: EstimateInput!) {
  estimate(input: $input) {
    __typename
    ... on Estimate {
      messages
      creditsPerMessage
      segments
      creditKind
    }
    ... on UserError {
      code
      message
    }
  }
}
`,b=`# Fragments shared by the operations of several screens (see README.md). A fragment used by one
# file only is defined in that file.

fragment MoneyFields on Money {
  amount
  currency
}

fragment UsageFields on Usage {
  periodStart
  periodEnd
  credits {
    kind
    used
    included
    remaining
  }
}

# Billing → Overview: the plan and its actions, the period's usage, the balance, how to pay
# (methods, saved cards, billing details), a change or new price waiting for the renewal, and how
# the renewal will be paid. The Billing page keeps this after every change (checkout answers it).
fragment BillingOverviewFields on Workspace {
  id
  name
  status
  plan {
    code
    name
    adjustable
    basePrice {
      ...MoneyFields
    }
    priceVersion
  }
  allowances {
    kind
    limit
  }
  period {
    start
    end
  }
  usage {
    ...UsageFields
  }
  balance {
    ...MoneyFields
  }
  actions
  paymentMethods {
    code
    label
    capabilities
  }
  cards {
    id
    brand
    last4
    expMonth
    expYear
    isRenewalMethod
  }
  billingDetails {
    customerType
    name
    companyName
    addressLine1
    addressLine2
    city
    postalCode
    region
    country
    vatId
    email
    missingFields
  }
  scheduledChange {
    plan {
      code
      name
    }
    emailCredits
    messagingCredits
    effectiveAt
    dueAtRenewal {
      subtotal {
        ...MoneyFields
      }
      tax {
        ...MoneyFields
      }
      total {
        ...MoneyFields
      }
    }
  }
  priceChange {
    fromVersion
    toVersion
    effectiveAt
    monthlySubtotalBefore {
      ...MoneyFields
    }
    monthlySubtotalAfter {
      ...MoneyFields
    }
  }
  renewalPayment {
    method {
      code
      label
    }
    chosen
    card {
      id
      brand
      last4
      expMonth
      expYear
    }
    nextRenewalAt
    nextRenewalAmount {
      ...MoneyFields
    }
    nothingToPay
    canPayNextRenewal
    problem
    message
  }
}

# A plan as Select a Plan shows it: features, price and its version, and the credit options (the
# Customize Plan sliders' ranges) with their graduated price tiers.
fragment PlanCard on Plan {
  code
  name
  description
  tier
  channels
  features
  basePrice {
    ...MoneyFields
  }
  priceVersion
  purchasable
  adjustable
  requiresQuote
  emailCredits {
    ...CreditOptionFields
  }
  messagingCredits {
    ...CreditOptionFields
  }
}

fragment CreditOptionFields on CreditOption {
  kind
  included
  min
  max
  step
  default
  adjustable
  tiers {
    fromCredits
    upTo
    unitPrice {
      ...MoneyFields
    }
  }
}

# The Order Preview: the monthly price of the configuration, what is due now (prorated, with
# tax) and at renewal, when each part applies, the balance before and after, and the token
# Checkout Now sends back.
fragment OrderPreviewFields on Quote {
  kind
  plan {
    code
    name
    priceVersion
  }
  emailCredits
  messagingCredits
  monthlyLines {
    ...OrderLineFields
  }
  monthlySubtotal {
    ...MoneyFields
  }
  changes {
    timing
    effectiveAt
    plan {
      code
      name
    }
    emailCredits
    messagingCredits
  }
  dueNow {
    ...ChargeFields
  }
  dueAtRenewal {
    ...ChargeFields
  }
  renewalAt
  proration {
    daysLeft
    daysInPeriod
  }
  computedAt
  expiresAt
  balance {
    now {
      ...MoneyFields
    }
    afterPurchase {
      ...MoneyFields
    }
    sufficient
  }
  token
}

fragment ChargeFields on Charge {
  lines {
    ...OrderLineFields
  }
  subtotal {
    ...MoneyFields
  }
  taxLines {
    name
    rate
    amount {
      ...MoneyFields
    }
    treatment
    note
  }
  tax {
    ...MoneyFields
  }
  total {
    ...MoneyFields
  }
  taxCalculated
}

fragment OrderLineFields on OrderLine {
  kind
  description
  quantity
  amount {
    ...MoneyFields
  }
  priceVersion
}
`,x=`# Live updates over WebSocket (graphql-transport-ws, the API key in connection_init): the
# workspace's plan changes (applied, scheduled, cancelled) as they happen, wherever they were made
# (another tab, the renewal, an operator).

subscription PlanChanges {
  planChanged {
    id
    type
    sequence
    occurredAt
    payload
  }
}
`,S=`# The downgrade notice's "Keep my current plan": cancel the change waiting for the renewal.

mutation CancelScheduledChange {
  cancelScheduledChange {
    __typename
    ... on Workspace {
      ...BillingOverviewFields
    }
    ... on UserError {
      code
      message
    }
  }
}
`,C=`# Top up My balance (the seed's "Before You Begin": a balance that covers the order).

mutation TopUp($input: TopUpInput!) {
  topUpBalance(input: $input) {
    __typename
    ... on TopUpSuccess {
      amount {
        ...MoneyFields
      }
      balance {
        ...MoneyFields
      }
    }
    ... on PaymentActionRequired {
      paymentId
      nextAction
    }
    ... on PaymentDeclined {
      declineCode
    }
    ... on UserError {
      code
      message
      field
    }
  }
}
`,w=/^(query|mutation|subscription|fragment) (\w+)[^\n]*\{[\s\S]*?^\}/gm;function T(e){let t=new Map;for(let n of e.matchAll(w))t.set(n[2],n[0]);return t}var E=T(b);function D(e,t){let n=T(e),r=n.get(t);if(r===void 0)throw Error(`no operation ${t}`);let i=new Map,a=e=>{for(let[,t]of e.matchAll(/\.\.\.(\w+)/g)){let e=n.get(t)??E.get(t);e!==void 0&&!i.has(t)&&(i.set(t,e),a(e))}};return a(r),[r,...i.values()].join(`

`)}var O=D(g,`BillingPage`),k=D(y,`CustomizePlan`),A=D(y,`OrderPreview`),j=D(y,`MessageCalculator`),M=D(_,`CheckoutNow`),N=D(_,`ConfirmPayment`),P=D(h,`UpdateBillingDetails`),F=D(C,`TopUp`),I=D(v,`RequestQuote`),L=D(S,`CancelScheduledChange`),R=D(x,`PlanChanges`);function z(e){return e.replace(/\B(?=(\d{3})+(?!\d))/g,`,`)}function B(e){if(!e)return`—`;let t=e.amount.startsWith(`-`),[n,r]=e.amount.replace(`-`,``).split(`.`),i=z(n)+(r?`.${r}`:``);return`${t?`−`:``}${i} ${e.currency}`}function V(e){if(e==null)return`—`;let[t,n]=String(e).split(`.`),r=n?n.replace(/0+$/,``):``;return z(t)+(r?`.${r}`:``)}function H(e){return e?new Date(e).toLocaleDateString(`en-GB`,{day:`numeric`,month:`long`,year:`numeric`,timeZone:`UTC`}):`—`}var U={EMAIL:`Email credits`,MESSAGING:`SMS/WhatsApp credits`},W=r(),G=[[`name`,`Name`],[`companyName`,`Company`],[`addressLine1`,`Address`],[`addressLine2`,`Address line 2`],[`city`,`City`],[`postalCode`,`Postal code`],[`region`,`Region`],[`country`,`Country (ISO code)`],[`vatId`,`VAT ID`],[`email`,`Billing email`]];function K({apiKey:e,details:t,onSaved:n}){let r=t?.missingFields??[`all`],[i,o]=(0,a.useState)(r.length>0),[s,c]=(0,a.useState)(()=>Object.fromEntries(G.map(([e])=>[e,t?.[e]??``]))),[l,u]=(0,a.useState)(t?.customerType??`PERSON`),[d,p]=(0,a.useState)(null);async function m(t){t.preventDefault();let r={customerType:l};for(let[e]of G)r[e]=s[e].trim()||null;let{updateBillingDetails:i}=await f(e,P,{input:r});if(i.__typename!==`BillingDetails`)return p(i.message);p(null),o(!1),n()}return!i&&t?(0,W.jsxs)(`div`,{className:`card`,"data-testid":`billing-information`,children:[(0,W.jsx)(`h2`,{children:`Billing information`}),(0,W.jsxs)(`p`,{children:[t.companyName&&(0,W.jsxs)(W.Fragment,{children:[t.companyName,(0,W.jsx)(`br`,{})]}),t.name,(0,W.jsx)(`br`,{}),t.addressLine1,`, `,t.postalCode,` `,t.city,`, `,t.country,t.vatId&&(0,W.jsxs)(W.Fragment,{children:[(0,W.jsx)(`br`,{}),`VAT ID `,t.vatId]})]}),(0,W.jsx)(`p`,{className:`note`,children:`VAT and applicable taxes are calculated based on your billing information.`}),(0,W.jsx)(`button`,{onClick:()=>o(!0),children:`Edit billing details`})]}):(0,W.jsxs)(`form`,{className:`card billing-form`,onSubmit:m,"data-testid":`billing-form`,children:[(0,W.jsx)(`h2`,{children:`Billing information`}),(0,W.jsxs)(`label`,{children:[`Customer type`,(0,W.jsxs)(`select`,{value:l,onChange:e=>u(e.target.value),children:[(0,W.jsx)(`option`,{value:`PERSON`,children:`Person`}),(0,W.jsx)(`option`,{value:`COMPANY`,children:`Company`})]})]}),G.map(([e,t])=>(0,W.jsxs)(`label`,{children:[t,(0,W.jsx)(`input`,{"aria-label":t,value:s[e],onChange:t=>c({...s,[e]:t.target.value})})]},e)),d&&(0,W.jsx)(`p`,{className:`error`,children:d}),(0,W.jsx)(`button`,{type:`submit`,className:`primary`,children:`Save billing details`})]})}function q({card:e,onChange:t}){let n=n=>r=>t({...e,[n]:n===`save`?r.target.checked:r.target.value});return(0,W.jsxs)(`div`,{className:`card-fields`,"data-testid":`card-fields`,children:[(0,W.jsx)(`input`,{"aria-label":`Card number`,inputMode:`numeric`,autoComplete:`cc-number`,placeholder:`Card number`,value:e.number,onChange:n(`number`)}),(0,W.jsx)(`input`,{"aria-label":`Expiry month`,inputMode:`numeric`,placeholder:`MM`,value:e.expMonth,onChange:n(`expMonth`)}),(0,W.jsx)(`input`,{"aria-label":`Expiry year`,inputMode:`numeric`,placeholder:`YYYY`,value:e.expYear,onChange:n(`expYear`)}),(0,W.jsx)(`input`,{"aria-label":`CVC`,inputMode:`numeric`,autoComplete:`cc-csc`,placeholder:`CVC`,value:e.cvc,onChange:n(`cvc`)}),(0,W.jsxs)(`label`,{children:[(0,W.jsx)(`input`,{type:`checkbox`,checked:e.save,onChange:n(`save`)}),` Save this card for renewals`]})]})}var J={NONE:`No change`,NEW_PERIOD:`New subscription`,UPGRADE:`Upgrade, applied now`,DOWNGRADE:`Change at renewal`,SPLIT:`Increase now, reduction at renewal`};function Y({quote:e,children:t}){let n=e.changes.find(e=>e.timing===`AT_RENEWAL`);return(0,W.jsxs)(`aside`,{className:`card order-preview`,"data-testid":`order-preview`,children:[(0,W.jsx)(`h2`,{children:`Order preview`}),(0,W.jsxs)(`p`,{children:[(0,W.jsx)(`strong`,{children:e.plan.name}),` · `,J[e.kind]]}),(0,W.jsx)(`table`,{children:(0,W.jsxs)(`tbody`,{children:[e.monthlyLines.map(e=>(0,W.jsxs)(`tr`,{children:[(0,W.jsx)(`td`,{children:e.description}),(0,W.jsx)(`td`,{className:`amount`,children:B(e.amount)})]},e.description)),(0,W.jsxs)(`tr`,{className:`subtotal`,children:[(0,W.jsx)(`td`,{children:`Monthly price`}),(0,W.jsx)(`td`,{className:`amount`,children:B(e.monthlySubtotal)})]})]})}),n&&(0,W.jsxs)(`p`,{className:`note downgrade`,"data-testid":`at-renewal-notice`,children:[`From `,H(n.effectiveAt),`: `,n.plan.name,` with `,V(n.emailCredits),` email credits`,n.messagingCredits?` and ${V(n.messagingCredits)} SMS/WhatsApp credits`:``,`. Your current plan and limits remain active until renewal.`]}),(0,W.jsx)(X,{title:`Due now`,charge:e.dueNow,testId:`due-now`,showLines:e.kind!==`NEW_PERIOD`}),e.proration&&(0,W.jsxs)(`p`,{className:`muted`,children:[`Prorated for `,e.proration.daysLeft,` of `,e.proration.daysInPeriod,` days left in this period.`]}),(0,W.jsxs)(`p`,{className:`muted`,children:[`Then `,B(e.dueAtRenewal.total),` at renewal on `,H(e.renewalAt),`.`]}),t]})}function X({title:e,charge:t,testId:n,showLines:r}){return(0,W.jsx)(`table`,{className:`charge`,children:(0,W.jsxs)(`tbody`,{children:[r&&t.lines.map(e=>(0,W.jsxs)(`tr`,{children:[(0,W.jsx)(`td`,{children:e.description}),(0,W.jsx)(`td`,{className:`amount`,children:B(e.amount)})]},e.description)),t.taxLines.map(e=>(0,W.jsxs)(`tr`,{children:[(0,W.jsx)(`td`,{children:e.name}),(0,W.jsx)(`td`,{className:`amount`,children:e.note&&!Number(e.amount.amount)?`—`:B(e.amount)})]},e.name)),!t.taxCalculated&&(0,W.jsx)(`tr`,{children:(0,W.jsx)(`td`,{colSpan:2,className:`muted`,children:`VAT is calculated from your billing details at checkout.`})}),(0,W.jsxs)(`tr`,{className:`total`,children:[(0,W.jsx)(`td`,{children:e}),(0,W.jsx)(`td`,{className:`amount`,"data-testid":n,children:B(t.total)})]})]})})}function Z({onAnswer:e}){return(0,W.jsx)(`div`,{className:`modal`,role:`dialog`,"aria-label":`3-D Secure`,"data-testid":`three-d-secure`,children:(0,W.jsxs)(`div`,{className:`card`,children:[(0,W.jsx)(`h2`,{children:`Confirm the payment with your bank`}),(0,W.jsx)(`p`,{children:`Your card asks you to confirm this payment (3-D Secure, sandbox).`}),(0,W.jsx)(`button`,{className:`primary`,onClick:()=>e(`authenticated`),children:`Complete authentication`}),(0,W.jsx)(`button`,{onClick:()=>e(`failed`),children:`Fail authentication`})]})})}function Q({apiKey:e,order:t,workspace:n,go:r,onChanged:i}){let[o,s]=(0,a.useState)(t.quote),[c,l]=(0,a.useState)({method:`balance`}),[u,d]=(0,a.useState)({number:``,expMonth:``,expYear:``,cvc:``,save:!0}),[p,m]=(0,a.useState)(!1),[h,g]=(0,a.useState)(null),[_,v]=(0,a.useState)(null),y=(0,a.useMemo)(()=>crypto.randomUUID(),[o,c]),b=c.method===`balance`,x=b&&!o.balance.sufficient,S=(n.billingDetails?.missingFields??[`billing details`]).length>0;async function C(){let{quote:n}=await f(e,A,{input:{planCode:t.planCode,emailCredits:o.emailCredits,messagingCredits:o.messagingCredits}});n.__typename===`Quote`&&s(n)}function w(){return c.method===`balance`?{method:`balance`}:`cardId`in c?{method:`card`,cardId:c.cardId}:{method:`card`,newCard:{number:u.number.replace(/\s/g,``),expMonth:Number(u.expMonth),expYear:Number(u.expYear),cvc:u.cvc},saveCard:u.save}}async function T(){m(!0),g(null);try{let{checkout:t}=await f(e,M,{input:{quoteToken:o.token,paymentMethod:w(),idempotencyKey:y}});await E(t)}finally{m(!1)}}async function E(e){switch(e.__typename){case`CheckoutSuccess`:g({ok:!0,text:`Done: your workspace is on ${e.workspace.plan.name}. Invoice ${e.invoice?.number??`—`}.`}),i();return;case`PaymentActionRequired`:v(e.paymentId);return;case`QuoteChanged`:s(e.quote),g({ok:!1,text:`The price changed since your preview. Review the new total and check out again.`});return;case`InsufficientBalance`:g({ok:!1,text:`Your balance is short by ${B(e.shortfall)}. Top up or choose a card.`});return;case`PaymentDeclined`:g({ok:!1,text:`The card was declined (${e.declineCode}). Choose another payment method.`});return;case`PaymentPending`:g({ok:!0,text:`The payment is pending; the plan changes once it is paid.`});return;default:g({ok:!1,text:e.message})}}async function D(t){let n=_;v(null);let{confirmPayment:r}=await f(e,N,{paymentId:n,challengeResponse:t});await E(r)}return(0,W.jsxs)(`section`,{className:`checkout`,children:[(0,W.jsx)(`button`,{className:`link`,onClick:()=>r({name:`customize`,planCode:t.planCode}),children:`← Customize Plan`}),(0,W.jsx)(`h1`,{children:`Checkout`}),(0,W.jsxs)(`div`,{className:`columns`,children:[(0,W.jsxs)(`div`,{children:[(0,W.jsx)(K,{apiKey:e,details:n.billingDetails,onSaved:()=>(i(),C())}),(0,W.jsxs)(`div`,{className:`card`,"data-testid":`payment-methods`,children:[(0,W.jsx)(`h2`,{children:`Payment Method`}),(0,W.jsxs)(`label`,{className:`method`,children:[(0,W.jsx)(`input`,{type:`radio`,name:`method`,checked:b,onChange:()=>l({method:`balance`})}),`My balance`,(0,W.jsxs)(`span`,{className:`muted`,"data-testid":`balance-now`,children:[`Balance `,B(o.balance.now)]}),(0,W.jsxs)(`span`,{className:o.balance.sufficient?`muted`:`error`,"data-testid":`balance-after`,children:[`After purchase `,B(o.balance.afterPurchase)]})]}),n.cards.map(e=>(0,W.jsxs)(`label`,{className:`method`,children:[(0,W.jsx)(`input`,{type:`radio`,name:`method`,checked:`cardId`in c&&c.cardId===e.id,onChange:()=>l({method:`card`,cardId:e.id})}),e.brand,` •••• `,e.last4,(0,W.jsxs)(`span`,{className:`muted`,children:[`expires `,String(e.expMonth).padStart(2,`0`),`/`,e.expYear]})]},e.id)),(0,W.jsxs)(`label`,{className:`method`,children:[(0,W.jsx)(`input`,{type:`radio`,name:`method`,"data-testid":`new-card`,checked:`newCard`in c,onChange:()=>l({method:`card`,newCard:!0})}),`Add new Credit Card`]}),`newCard`in c&&(0,W.jsx)(q,{card:u,onChange:d}),x&&(0,W.jsxs)(`p`,{className:`error`,"data-testid":`shortfall`,children:[`Your balance is insufficient: `,B(o.dueNow.total),` is due and you have `,B(o.balance.now),`. Top up your balance or select another payment method.`]})]})]}),(0,W.jsxs)(`div`,{children:[(0,W.jsxs)(Y,{quote:o,children:[(0,W.jsx)(`button`,{className:`primary`,"data-testid":`checkout-now`,disabled:p||x||S,onClick:T,children:`Checkout Now`}),S&&(0,W.jsx)(`p`,{className:`muted`,children:`Complete your billing details to check out.`})]}),h&&(0,W.jsx)(`p`,{className:h.ok?`success`:`error`,role:`status`,"data-testid":`checkout-result`,children:h.text}),h?.ok&&(0,W.jsx)(`button`,{onClick:()=>r({name:`overview`}),"data-testid":`back-to-overview`,children:`Back to Billing`})]})]}),_&&(0,W.jsx)(Z,{onAnswer:D})]})}function $({apiKey:e,credits:t,data:n}){let[r,i]=(0,a.useState)(n.destinations.find(e=>e.country===`DE`)?.country??n.destinations[0]?.country??``),o=new Set(n.destinations.find(e=>e.country===r)?.messageTypes.map(e=>e.code)),s=n.messageTypes.filter(e=>e.creditKind===`MESSAGING`&&o.has(e.code)),[c,l]=(0,a.useState)(``),u=s.some(e=>e.code===c)?c:s[0]?.code??``,[d,p]=(0,a.useState)(``);return(0,a.useEffect)(()=>{if(!u)return;let n=!0;return f(e,j,{input:{credits:t,messageType:u,country:r||null}}).then(({estimate:e})=>{n&&p(e.__typename===`Estimate`?`≈ ${V(e.messages)} messages (${V(e.creditsPerMessage)} credits each)`:e.message)}),()=>{n=!1}},[e,t,r,u]),(0,W.jsxs)(`div`,{className:`card calculator`,"data-testid":`message-calculator`,children:[(0,W.jsx)(`h2`,{children:`Message calculator`}),(0,W.jsxs)(`label`,{children:[`Destination country`,(0,W.jsx)(`select`,{value:r,onChange:e=>i(e.target.value),children:n.destinations.map(e=>(0,W.jsx)(`option`,{value:e.country,children:e.name},e.country))})]}),(0,W.jsxs)(`label`,{children:[`Message type`,(0,W.jsx)(`select`,{value:u,onChange:e=>l(e.target.value),children:s.map(e=>(0,W.jsx)(`option`,{value:e.code,children:e.name},e.code))})]}),(0,W.jsx)(`p`,{className:`estimate`,"data-testid":`estimate`,children:d})]})}function ee({apiKey:e,plan:t,data:n,go:r}){let[i,o]=(0,a.useState)(null),[s,c]=(0,a.useState)(null),[l,u]=(0,a.useState)(null),[d,p]=(0,a.useState)(null),m=(0,a.useRef)(0);(0,a.useEffect)(()=>{f(e,k,{planCode:t.code}).then(({selectPlan:e})=>{if(e.__typename!==`PlanSelection`)return p(e.message);o(t.emailCredits?e.emailCredits:null),c(t.messagingCredits?e.messagingCredits:null)})},[e,t]),(0,a.useEffect)(()=>{if(i===null&&t.emailCredits)return;let n=++m.current,r=setTimeout(async()=>{let{quote:r}=await f(e,A,{input:{planCode:t.code,emailCredits:i,messagingCredits:s}});n===m.current&&(r.__typename===`Quote`?(u(r),p(null)):p(r.message))},120);return()=>clearTimeout(r)},[e,t.code,i,s]);let h=[[t.emailCredits,i,o],[t.messagingCredits,s,c]];return(0,W.jsxs)(`section`,{className:`customize`,children:[(0,W.jsx)(`button`,{className:`link`,onClick:()=>r({name:`plans`}),children:`← Select a Plan`}),(0,W.jsxs)(`h1`,{children:[`Customize Plan: `,t.name]}),(0,W.jsxs)(`div`,{className:`columns`,children:[(0,W.jsxs)(`div`,{children:[(0,W.jsxs)(`div`,{className:`card`,children:[(0,W.jsx)(`h2`,{children:`Select volume`}),!t.adjustable&&(0,W.jsxs)(`p`,{className:`note`,children:[`The `,t.name,` plan does not include adjustable limits.`]}),h.map(([e,t,n])=>e&&t!==null?(0,W.jsxs)(`label`,{className:`slider`,children:[(0,W.jsxs)(`span`,{children:[U[e.kind],` `,(0,W.jsx)(`strong`,{"data-testid":`value-${e.kind}`,children:V(t)}),` / month`]}),(0,W.jsx)(`input`,{type:`range`,"data-testid":`slider-${e.kind}`,min:e.min,max:e.max,step:e.step,value:t,disabled:!e.adjustable,onChange:e=>n(Number(e.target.value))}),(0,W.jsxs)(`span`,{className:`muted`,children:[V(e.min),` – `,V(e.max),`, `,V(e.included),` included`]})]},e.kind):null),(0,W.jsx)(`p`,{className:`note`,children:`Email and messaging credits do not roll over: unused credits reset at the start of each billing period. If you reduce included limits, the updated limits apply at the start of the next billing period; your current limits remain active until renewal.`})]}),t.messagingCredits&&s!==null&&(0,W.jsx)($,{apiKey:e,credits:s,data:n}),(0,W.jsx)(`p`,{className:`note`,children:`Each email uses 1 credit.`})]}),(0,W.jsxs)(`div`,{children:[d&&(0,W.jsx)(`p`,{className:`error`,children:d}),l&&(0,W.jsx)(Y,{quote:l,children:(0,W.jsx)(`button`,{className:`primary`,"data-testid":`proceed`,disabled:l.kind===`NONE`,onClick:()=>r({name:`checkout`,order:{planCode:t.code,quote:l}}),children:`Proceed to checkout`})})]})]})]})}function te({apiKey:e,go:t}){let[n,r]=(0,a.useState)({contactName:``,email:``,company:``,message:``}),[i,o]=(0,a.useState)({email:``,messaging:``}),[s,c]=(0,a.useState)(null);async function l(t){t.preventDefault();let{requestCustomQuote:r}=await f(e,I,{input:{...n,message:n.message||null,expectedEmailCredits:i.email?Number(i.email):null,expectedMessagingCredits:i.messaging?Number(i.messaging):null}});c(r.__typename===`CustomQuoteRequested`?{ok:!0,text:`Thank you: our sales team will contact you. You can also write to ${r.salesContact}.`}:{ok:!1,text:r.message})}return(0,W.jsxs)(`section`,{children:[(0,W.jsx)(`button`,{className:`link`,onClick:()=>t({name:`plans`}),children:`← Select a Plan`}),(0,W.jsx)(`h1`,{children:`Request a quote: Custom`}),(0,W.jsxs)(`form`,{className:`card quote-form`,onSubmit:l,"data-testid":`custom-quote-form`,children:[[`contactName`,`email`,`company`].map(e=>(0,W.jsxs)(`label`,{children:[{contactName:`Your name`,email:`Email`,company:`Company`}[e],(0,W.jsx)(`input`,{required:!0,value:n[e],onChange:t=>r({...n,[e]:t.target.value})})]},e)),(0,W.jsxs)(`label`,{children:[`Expected email credits per month`,(0,W.jsx)(`input`,{inputMode:`numeric`,value:i.email,onChange:e=>o({...i,email:e.target.value})})]}),(0,W.jsxs)(`label`,{children:[`Expected SMS/WhatsApp credits per month`,(0,W.jsx)(`input`,{inputMode:`numeric`,value:i.messaging,onChange:e=>o({...i,messaging:e.target.value})})]}),(0,W.jsxs)(`label`,{children:[`What do you need?`,(0,W.jsx)(`textarea`,{value:n.message,onChange:e=>r({...n,message:e.target.value})})]}),(0,W.jsx)(`button`,{className:`primary`,type:`submit`,children:`Request a quote`}),s&&(0,W.jsx)(`p`,{className:s.ok?`success`:`error`,role:`status`,"data-testid":`quote-request-result`,children:s.text})]})]})}function ne({apiKey:e,workspace:t,onDone:n}){let[r,i]=(0,a.useState)(!1),[o,s]=(0,a.useState)(`50.00`),[c,l]=(0,a.useState)(t.cards[0]?.id??`new`),[u,d]=(0,a.useState)({number:``,expMonth:``,expYear:``,cvc:``,save:!1}),[p,m]=(0,a.useState)(null),h=(0,a.useMemo)(()=>crypto.randomUUID(),[o,c,u]);async function g(t){t.preventDefault();let r=c===`new`?{method:`card`,newCard:{number:u.number.replace(/\s/g,``),expMonth:Number(u.expMonth),expYear:Number(u.expYear),cvc:u.cvc},saveCard:u.save}:{method:`card`,cardId:c},{topUpBalance:a}=await f(e,F,{input:{amount:o,paymentMethod:r,idempotencyKey:h}});a.__typename===`TopUpSuccess`?(m(`Balance topped up: ${a.balance.amount} ${a.balance.currency}.`),i(!1),n()):m(a.message??`Declined (${a.declineCode}).`)}return r?(0,W.jsxs)(`form`,{onSubmit:g,className:`top-up`,"data-testid":`top-up-form`,children:[(0,W.jsxs)(`label`,{children:[`Amount (`,t.balance.currency,`)`,(0,W.jsx)(`input`,{"aria-label":`Top-up amount`,inputMode:`decimal`,value:o,onChange:e=>s(e.target.value)})]}),(0,W.jsxs)(`select`,{"aria-label":`Pay with`,value:c,onChange:e=>l(e.target.value),children:[t.cards.map(e=>(0,W.jsxs)(`option`,{value:e.id,children:[e.brand,` •••• `,e.last4]},e.id)),(0,W.jsx)(`option`,{value:`new`,children:`New card`})]}),c===`new`&&(0,W.jsx)(q,{card:u,onChange:d}),p&&(0,W.jsx)(`p`,{className:`error`,children:p}),(0,W.jsx)(`button`,{className:`primary`,type:`submit`,children:`Top up`})]}):(0,W.jsxs)(W.Fragment,{children:[(0,W.jsx)(`button`,{onClick:()=>i(!0),"data-testid":`top-up`,children:`Top up balance`}),p&&(0,W.jsx)(`p`,{role:`status`,children:p})]})}function re({apiKey:e,workspace:t,go:n,onChanged:r}){let[i,o]=(0,a.useState)(!1),[s,c]=(0,a.useState)(null),l=t.scheduledChange;async function u(){let{cancelScheduledChange:t}=await f(e,L);c(t.__typename===`Workspace`?`Your current plan continues.`:t.message),r()}return(0,W.jsxs)(`section`,{className:`overview`,children:[(0,W.jsx)(`h1`,{children:`Billing`}),(0,W.jsx)(`nav`,{className:`tabs`,children:(0,W.jsx)(`span`,{className:`active`,children:`Overview`})}),(0,W.jsxs)(`div`,{className:`card your-plan`,"data-testid":`your-plan`,children:[(0,W.jsxs)(`div`,{className:`card-head`,children:[(0,W.jsx)(`h2`,{children:`Your Plan`}),t.actions.includes(`CHANGE_PLAN`)&&(0,W.jsxs)(`div`,{className:`menu`,children:[(0,W.jsx)(`button`,{"aria-label":`Plan actions`,onClick:()=>o(!i),children:`⋯`}),i&&(0,W.jsx)(`ul`,{role:`menu`,children:(0,W.jsx)(`li`,{children:(0,W.jsx)(`button`,{role:`menuitem`,onClick:()=>n({name:`plans`}),children:`Change Plan`})})})]})]}),(0,W.jsxs)(`p`,{className:`plan-name`,"data-testid":`current-plan`,children:[t.plan.name,t.plan.basePrice&&(0,W.jsxs)(`span`,{children:[` · `,B(t.plan.basePrice),` / month base`]})]}),(0,W.jsxs)(`p`,{className:`muted`,children:[`Current period `,H(t.period.start),` – `,H(t.period.end)]}),(0,W.jsx)(`ul`,{className:`limits`,children:t.usage.credits.map(e=>(0,W.jsxs)(`li`,{children:[U[e.kind],`: `,V(e.used),` used of `,V(e.included)]},e.kind))}),(0,W.jsxs)(`div`,{className:`actions`,children:[t.actions.includes(`UPGRADE_PLAN`)&&(0,W.jsx)(`button`,{className:`primary`,onClick:()=>n({name:`plans`}),children:`Upgrade Plan`}),t.actions.includes(`CUSTOMIZE_CURRENT_PLAN`)&&(0,W.jsx)(`button`,{className:`primary`,onClick:()=>n({name:`customize`,planCode:t.plan.code}),children:`Customize Current Plan`})]})]}),l&&(0,W.jsxs)(`div`,{className:`card downgrade-notice`,"data-testid":`scheduled-change`,children:[(0,W.jsx)(`h2`,{children:`Scheduled change`}),(0,W.jsxs)(`p`,{children:[`From `,H(l.effectiveAt),` your workspace moves to `,(0,W.jsx)(`strong`,{children:l.plan.name}),` (`,V(l.emailCredits),` email credits`,l.messagingCredits?`, ${V(l.messagingCredits)} SMS/WhatsApp credits`:``,`), renewing at `,B(l.dueAtRenewal.total),`. Your current plan and limits remain active until then.`]}),(0,W.jsx)(`button`,{onClick:u,children:`Keep my current plan`})]}),(0,W.jsxs)(`div`,{className:`card`,children:[(0,W.jsx)(`h2`,{children:`Balance`}),(0,W.jsx)(`p`,{className:`balance`,"data-testid":`balance`,children:B(t.balance)}),(0,W.jsx)(`p`,{className:`muted`,"data-testid":`renewal`,children:t.renewalPayment.message}),(0,W.jsx)(ne,{apiKey:e,workspace:t,onDone:r})]}),s&&(0,W.jsx)(`p`,{role:`status`,children:s})]})}function ie({plans:e,workspace:t,go:n}){let r=e.find(e=>e.code===t.plan.code);return(0,W.jsxs)(`section`,{children:[(0,W.jsx)(`h1`,{children:`Select a Plan`}),(0,W.jsx)(`p`,{className:`note`,children:`If you switch to a lower-tier plan, the new plan takes effect at the start of the next billing period. Your current plan remains active until renewal.`}),(0,W.jsx)(`div`,{className:`plans`,children:e.map(e=>{let i=e.code===t.plan.code,a=r!==void 0&&e.tier<r.tier;return(0,W.jsxs)(`article`,{className:`plan-card${i?` current`:``}`,"data-testid":`plan-${e.code}`,children:[(0,W.jsx)(`h2`,{children:e.name}),(0,W.jsx)(`p`,{className:`price`,children:e.basePrice?(0,W.jsxs)(W.Fragment,{children:[B(e.basePrice),` `,(0,W.jsx)(`span`,{children:`/ month`})]}):`Custom pricing`}),(0,W.jsx)(`p`,{children:e.description}),(0,W.jsx)(`ul`,{children:e.features.map(e=>(0,W.jsx)(`li`,{children:e},e))}),e.emailCredits&&(0,W.jsxs)(`p`,{className:`muted`,children:[`From `,V(e.emailCredits.min),` email credits`]}),e.code===`omnichannel`&&(0,W.jsx)(`p`,{className:`note`,children:`Messaging features and included credits depend on the selected configuration.`}),e.requiresQuote?(0,W.jsx)(`button`,{onClick:()=>n({name:`custom-quote`}),children:`Request a quote`}):i&&!e.adjustable?(0,W.jsx)(`button`,{disabled:!0,children:`Current plan`}):(0,W.jsx)(`button`,{className:i?``:`primary`,onClick:()=>n({name:`customize`,planCode:e.code}),children:i?`Customize`:a?`Switch to ${e.name}`:`Select ${e.name}`})]},e.code)})})]})}function ae({workspace:e,onUpgrade:t}){let[n,r]=(0,a.useState)(!1),i=e.usage.credits.find(e=>e.kind===`EMAIL`);return(0,W.jsxs)(`div`,{className:`widget`,children:[(0,W.jsxs)(`button`,{className:`widget-button`,"data-testid":`usage-widget`,onClick:()=>r(!n),children:[(0,W.jsx)(`strong`,{"data-testid":`widget-plan`,children:e.plan.name}),i&&(0,W.jsxs)(`span`,{children:[V(i.used),` / `,V(i.included),` emails`]})]}),n&&(0,W.jsxs)(`div`,{className:`widget-dialog`,role:`dialog`,"aria-label":`Plan and usage`,children:[(0,W.jsxs)(`h3`,{children:[e.plan.name,` plan`]}),e.usage.credits.map(e=>(0,W.jsxs)(`div`,{className:`usage-row`,children:[(0,W.jsx)(`span`,{children:U[e.kind]}),(0,W.jsx)(`meter`,{min:0,max:Number(e.included)||1,value:Math.min(Number(e.used),Number(e.included))}),(0,W.jsxs)(`span`,{children:[V(e.used),` of `,V(e.included),` used`]})]},e.kind)),(0,W.jsx)(`button`,{className:`primary`,onClick:()=>{r(!1),t()},children:`Upgrade now`})]})]})}function oe(){let[e,t]=(0,a.useState)(()=>c()),[n,r]=(0,a.useState)(null),[i,o]=(0,a.useState)(null),[s,p]=(0,a.useState)({name:`overview`}),[h,g]=(0,a.useState)(null),_=(0,a.useRef)([]);_.current=n?.plans??_.current;let v=(0,a.useCallback)(async()=>{if(e)try{let n=await f(e,O);if(n.workspace.__typename!==`Workspace`){u(),t(null),o(n.workspace.message);return}r({...n,workspace:n.workspace}),o(null)}catch(e){o(e instanceof d?e.message:`The gateway cannot be reached.`)}},[e]);if((0,a.useEffect)(()=>{v()},[v]),(0,a.useEffect)(()=>{if(e)return m(e,R,e=>{g(se(e,_.current)),v()})},[e,v]),!e)return(0,W.jsx)(ce,{error:i,onKey:e=>(l(e),t(e))});if(!n)return(0,W.jsx)(`p`,{className:`loading`,children:i??`Loading…`});let y=n.workspace;return(0,W.jsxs)(`div`,{className:`page`,children:[(0,W.jsxs)(`header`,{className:`topbar`,children:[(0,W.jsx)(`span`,{className:`brand`,children:`contact.center™`}),(0,W.jsx)(ae,{workspace:y,onUpgrade:()=>p({name:`overview`})})]}),h&&(0,W.jsxs)(`div`,{className:`notice live`,role:`status`,"data-testid":`live-notice`,children:[h,` `,(0,W.jsx)(`button`,{onClick:()=>g(null),children:`Dismiss`})]}),i&&(0,W.jsx)(`div`,{className:`notice error`,children:i}),(0,W.jsxs)(`main`,{children:[s.name===`overview`&&(0,W.jsx)(re,{apiKey:e,workspace:y,go:p,onChanged:v}),s.name===`plans`&&(0,W.jsx)(ie,{plans:n.plans,workspace:y,go:p}),s.name===`customize`&&(0,W.jsx)(ee,{apiKey:e,plan:n.plans.find(e=>e.code===s.planCode),data:n,go:p}),s.name===`checkout`&&(0,W.jsx)(Q,{apiKey:e,order:s.order,workspace:y,go:p,onChanged:v}),s.name===`custom-quote`&&(0,W.jsx)(te,{apiKey:e,go:p})]})]})}function se(e,t){let n=e.payload?.to??e.payload,r=t.find(e=>e.code===n?.plan)?.name??n?.plan??`your`;switch(e.type){case`plan_change.applied`:return`Your workspace is now on the ${r} plan.`;case`plan_change.scheduled`:return`A change to the ${r} plan is scheduled for your next renewal.`;case`plan_change.cancelled`:return`The scheduled plan change was cancelled.`;default:return`Billing updated (${e.type}).`}}function ce({error:e,onKey:t}){let[n,r]=(0,a.useState)(``);return(0,W.jsxs)(`form`,{className:`key-form`,onSubmit:e=>{e.preventDefault(),n.trim()&&t(n.trim())},children:[(0,W.jsx)(`h1`,{children:`Billing`}),(0,W.jsx)(`p`,{children:`Paste your workspace's API key (the demo prints one when it starts).`}),e&&(0,W.jsx)(`p`,{className:`error`,children:e}),(0,W.jsx)(`input`,{"aria-label":`API key`,value:n,onChange:e=>r(e.target.value),placeholder:`bgw_…`,autoComplete:`off`}),(0,W.jsx)(`button`,{type:`submit`,children:`Open Billing`})]})}(0,o.createRoot)(document.getElementById(`root`)).render((0,W.jsx)(a.StrictMode,{children:(0,W.jsx)(oe,{})}));