// Plain framework views built in code (no androidx, no layout inflation): the few helpers every
// screen uses.
package org.amanat.android

import android.content.Context
import android.text.InputType
import android.util.TypedValue
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView

/** Small builders for the screens' views. */
internal object Ui {
    fun column(context: Context): LinearLayout = LinearLayout(context).apply {
        orientation = LinearLayout.VERTICAL
        val pad = dp(context, 16)
        setPadding(pad, pad, pad, pad)
    }

    fun scroll(context: Context, content: View): ScrollView = ScrollView(context).apply {
        addView(content, ViewGroup.LayoutParams(ViewGroup.LayoutParams.MATCH_PARENT, ViewGroup.LayoutParams.WRAP_CONTENT))
    }

    fun title(context: Context, text: CharSequence, id: Int = View.NO_ID): TextView = TextView(context).apply {
        this.id = id
        this.text = text
        setTextSize(TypedValue.COMPLEX_UNIT_SP, 22f)
    }

    fun text(context: Context, text: CharSequence = "", id: Int = View.NO_ID): TextView = TextView(context).apply {
        this.id = id
        this.text = text
        setTextSize(TypedValue.COMPLEX_UNIT_SP, 16f)
    }

    fun button(context: Context, text: CharSequence, id: Int = View.NO_ID, onClick: () -> Unit): Button =
        Button(context).apply {
            this.id = id
            this.text = text
            setOnClickListener { onClick() }
        }

    fun password(context: Context, hint: CharSequence, id: Int): EditText = EditText(context).apply {
        this.id = id
        this.hint = hint
        inputType = InputType.TYPE_CLASS_TEXT or InputType.TYPE_TEXT_VARIATION_PASSWORD
        // Keyboards must not learn or suggest what is typed into the app.
        imeOptions = imeOptions or android.view.inputmethod.EditorInfo.IME_FLAG_NO_PERSONALIZED_LEARNING
    }

    fun dp(context: Context, v: Int): Int =
        TypedValue.applyDimension(TypedValue.COMPLEX_UNIT_DIP, v.toFloat(), context.resources.displayMetrics).toInt()
}
